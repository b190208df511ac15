"""The mapcount question on large folios: what each way of tracking costs and which answers it loses.

Lab 08's trackers (:mod:`mmkit.labs.mapcount`) watch small folios, where a
per-page mapcount and a folio total are the same number.  On a large folio
(a 2 MiB THP, a 64 KiB mTHP) they part: one PTE batch of ``n`` pages costs
``n`` per-page counter updates under CONFIG_PAGE_MAPCOUNT, and a constant
number without it.  This module replays large-folio workloads as the rmap
events the kernel makes, keeps the true per-page mappings beside them, and
measures four ways of tracking (:data:`MODES`):

``per_page``
    CONFIG_PAGE_MAPCOUNT with CONFIG_MM_ID, the default since v6.15.
    mm/rmap.c: __folio_add_rmap() (v6.18): a PTE batch of ``n`` pages
    does ``atomic_inc_and_test(&page->_mapcount)`` on each page, one
    ``atomic_add_return_relaxed()`` on ``_nr_pages_mapped`` when a page
    became mapped, and folio_add_return_large_mapcount() (``_large_mapcount``
    and the MM slot's ``_mm_id_mapcount``, under the folio's bit spinlock);
    a PMD adds ``_entire_mapcount``, ``ENTIRELY_MAPPED`` into
    ``_nr_pages_mapped`` and the large mapcount.
``per_page_no_mm_id``
    The same per-page counters without the MM slots: v6.10 (05c5323b2a34
    "mm: track mapcount of large folios in single value") to v6.14.
    folio_maybe_mapped_shared() does not exist yet (include/linux/mm.h since
    v6.15) and a write fault on a PTE-mapped large folio never reuses it
    (mm/memory.c: wp_can_reuse_anon_folio(), from Barry Song's 2024 "mm:
    prohibit the last subpage from reusing the entire large folio" to v6.14: "let's just
    consistently not reuse subpages").
``mm_id``
    CONFIG_NO_PAGE_MAPCOUNT (v6.15, "mm: CONFIG_NO_PAGE_MAPCOUNT to prepare
    for not maintain per-page mapcounts in large folios", D. Hildenbrand):
    a PTE batch updates only the large mapcount and the MM slot; the
    per-page questions are answered from the folio:
    fs/proc/internal.h: folio_average_page_mapcount() for /proc/kpagecount
    and PSS, folio_maybe_mapped_shared() for pagemap's PM_MMAP_EXCLUSIVE
    and USS (fs/proc/task_mmu.c), and "average < 1" for a partially
    mapped THP (Documentation/mm/transhuge.rst).
``per_folio``
    Matthew Wilcox's proposal (linux-mm, January 2023): one mapcount per
    folio, "the number of (vma, page table) tuples which have a reference
    to any pages in this folio"; one update per PTE batch or PMD.  It answers "mapped?"
    and "mapped by one page table?"; a per-page question needs an rmap walk
    of the folio's VMAs (counted as walk steps, exact).

The MM slots follow include/linux/rmap.h: folio_add_return_large_mapcount()
and folio_sub_return_large_mapcount() (v6.15): an MM that takes a free
slot while other mappings exist sets the shared bit; an MM finding both
slots taken gets none; an unmap that frees a slot, or comes from an MM
without one, clears the bit when the remaining slot's mapcount equals the
large mapcount.

Examples
--------
>>> r = run_large("mthp-fork", 4)
>>> r.costs["per_page"].updates > r.costs["mm_id"].updates
True
>>> r.costs["per_page"].wrong_exclusive, r.costs["per_page"].wrong_kpagecount
(0, 0)
"""

import time
from collections import Counter
from dataclasses import dataclass, field

from ..pageinfo import PAGE_SIZE
from ..table import Table, Tables

__all__ = ["MODES", "LargeCosts", "LargeFolioSim", "LARGE_WORKLOADS", "run_large", "run_large_all", "workload_spec",
           "large_costs_table", "large_accuracy_table", "large_conclusions", "plot_large", "MODE_NOTES",
           "with_decisions"]

#: The tracking modes, in display order.
MODES = ("per_page", "per_page_no_mm_id", "mm_id", "per_folio")
#: What each mode is in the kernel (for the notebook's table).
MODE_NOTES = {
    "per_page": "CONFIG_PAGE_MAPCOUNT + CONFIG_MM_ID: the default since v6.15",
    "per_page_no_mm_id": "v6.10 to v6.14: per-page _mapcount and _large_mapcount, no MM slots",
    "mm_id": "CONFIG_NO_PAGE_MAPCOUNT (v6.15, EXPERIMENTAL): _large_mapcount + MM slots only",
    "per_folio": "Wilcox, Jan 2023 (not merged): one count of (VMA, page table) pairs per folio",
}
MM_ID_DUMMY = 0


@dataclass
class LargeCosts:
    """What one mode paid, and which answers it got wrong, during a workload.

    Attributes
    ----------
    updates : int
        Counter updates (atomic or under the folio's bit spinlock) by rmap.
    pages_touched : int
        Distinct ``struct page`` cache lines written per rmap call, summed:
        each page's own ``_mapcount`` lives in its own 64-byte struct page;
        the folio counters live in the first tail page.
    walk_steps : int
        VMAs visited by rmap walks a mode needs to answer a per-page question.
    questions : Counter
        Questions asked, by kind (``kpagecount``, ``exclusive``, ``pss``,
        ``partial``, ``cow``).
    wrong_kpagecount, wrong_exclusive, missed_partial, cow_copies : int
        Pages whose /proc/kpagecount differs from the precise per-page
        mapcount; pagemap PM_MMAP_EXCLUSIVE bits that differ; partially
        mapped folios not detected for the deferred split queue; write
        faults that copied a page the faulting process alone mapped.
    pss_error : float
        Sum over processes of ``|PSS - true PSS|``, in bytes.
    """

    updates: int = 0
    pages_touched: int = 0
    walk_steps: int = 0
    questions: Counter = field(default_factory=Counter)
    wrong_kpagecount: int = 0
    wrong_exclusive: int = 0
    missed_partial: int = 0
    cow_copies: int = 0
    pss_error: float = 0.0


class _Folio:
    """One large folio: the true mappings and each mode's counters."""

    def __init__(self, nr):
        self.nr = nr
        self.pte = [Counter() for _ in range(nr)]   # page -> {mm: PTEs}
        self.pmd = Counter()                        # mm -> PMD mappings
        self.large = 0                              # PTEs + PMDs (every mode but folio)
        self.entire = 0
        self.slots = [[MM_ID_DUMMY, 0], [MM_ID_DUMMY, 0]]
        self.shared = False

    # truth
    def page_mapcount(self, i):
        """folio_precise_page_mapcount(): PTEs of page i plus PMD mappings."""
        return sum(self.pte[i].values()) + sum(self.pmd.values())

    def mms(self):
        out = set(m for m, n in self.pmd.items() if n)
        for c in self.pte:
            out |= {m for m, n in c.items() if n}
        return out

    def mapped_by(self, mm, i):
        return self.pte[i][mm] + self.pmd[mm]

    def average(self):
        """fs/proc/internal.h: folio_average_page_mapcount() (v6.15)."""
        if self.large <= 0:
            return 0
        if self.large <= self.entire:
            return self.entire
        m = self.large - self.entire
        avg = (m + self.nr // 2) >> (self.nr.bit_length() - 1)
        return max(avg + self.entire, 1)

    # MM slots: include/linux/rmap.h, folio_{add,sub}_return_large_mapcount()
    def slot_add(self, mm, n):
        for s in self.slots:
            if s[0] == mm:
                s[1] += n
                return
        for idx, s in enumerate(self.slots):
            if s[0] == MM_ID_DUMMY:
                s[0], s[1] = mm, n
                if self.large - n > 0 or idx == 1:      # others already map it
                    self.shared = True
                return
        self.shared = True                               # both slots owned by others

    def slot_sub(self, mm, n):
        for s in self.slots:
            if s[0] == mm:
                s[1] -= n
                if s[1] == 0:
                    s[0] = MM_ID_DUMMY
                    self._maybe_clear()
                return
        self._maybe_clear()                              # an MM without a slot

    def _maybe_clear(self):
        rest = [s for s in self.slots if s[0] != MM_ID_DUMMY]
        if len(rest) == 1 and rest[0][1] == self.large:
            self.shared = False
        if self.large == 0:
            self.shared = False

    def maybe_shared(self):
        """include/linux/mm.h: folio_maybe_mapped_shared() of a large folio."""
        if self.large <= 1:
            return False
        return self.shared


class LargeFolioSim:
    """Replays rmap events on large folios and charges every mode.

    Processes are small ints (their MM id, never 0); ``vmas[mm]`` counts the
    VMAs an rmap walk of the folio visits for that process.
    """

    def __init__(self):
        self.costs = {m: LargeCosts() for m in MODES}
        self.folios = []
        self.events = Counter()
        #: the workload's steps in words, in order; a step that reads /proc says so (see :func:`workload_spec`)
        self.steps = []

    def step(self, text):
        """Record what the workload does next (for :func:`workload_spec`)."""
        self.steps.append(text)

    def new_folio(self, nr):
        f = _Folio(nr)
        self.folios.append(f)
        return f

    def _charge(self, mode, updates, touched):
        c = self.costs[mode]
        c.updates += updates
        c.pages_touched += touched

    # -- rmap events ------------------------------------------------------------------
    def map_ptes(self, f, mm, start, n):
        """folio_add_{new_anon,anon}_rmap_ptes(): PTEs for pages start..start+n-1 of ``f`` in ``mm``."""
        self.events["map_ptes"] += 1
        first = any(sum(f.pte[i].values()) == 0 for i in range(start, start + n))
        for i in range(start, start + n):
            f.pte[i][mm] += 1
        f.large += n
        f.slot_add(mm, n)
        self._charge("per_page", n + (1 if first else 0) + 2, n + 1)
        self._charge("per_page_no_mm_id", n + (1 if first else 0) + 1, n + 1)
        self._charge("mm_id", 2, 1)
        self._charge("per_folio", 1, 1)

    def unmap_ptes(self, f, mm, start, n):
        """folio_remove_rmap_ptes()."""
        self.events["unmap_ptes"] += 1
        for i in range(start, start + n):
            assert f.pte[i][mm] > 0, (mm, i)
            f.pte[i][mm] -= 1
        last = any(sum(f.pte[i].values()) == 0 for i in range(start, start + n))
        f.large -= n
        f.slot_sub(mm, n)
        self._charge("per_page", n + (1 if last else 0) + 2, n + 1)
        self._charge("per_page_no_mm_id", n + (1 if last else 0) + 1, n + 1)
        self._charge("mm_id", 2, 1)
        self._charge("per_folio", 1, 1)

    def map_pmd(self, f, mm):
        """folio_add_{new_anon,anon}_rmap_pmd()."""
        self.events["map_pmd"] += 1
        first = f.entire == 0
        f.pmd[mm] += 1
        f.entire += 1
        f.large += 1
        f.slot_add(mm, 1)
        self._charge("per_page", 1 + (1 if first else 0) + 2, 1)
        self._charge("per_page_no_mm_id", 1 + (1 if first else 0) + 1, 1)
        self._charge("mm_id", 3, 1)
        self._charge("per_folio", 1, 1)

    def unmap_pmd(self, f, mm):
        """folio_remove_rmap_pmd()."""
        self.events["unmap_pmd"] += 1
        assert f.pmd[mm] > 0
        f.pmd[mm] -= 1
        f.entire -= 1
        f.large -= 1
        f.slot_sub(mm, 1)
        last = f.entire == 0
        self._charge("per_page", 1 + (1 if last else 0) + 2, 1)
        self._charge("per_page_no_mm_id", 1 + (1 if last else 0) + 1, 1)
        self._charge("mm_id", 3, 1)
        self._charge("per_folio", 1, 1)

    def split_pmd(self, f, mm):
        """mm/huge_memory.c: __split_huge_pmd_locked(): the PTEs are mapped
        (folio_add_anon_rmap_ptes(), HPAGE_PMD_NR pages), then the PMD's
        mapping removed (folio_remove_rmap_pmd())."""
        self.map_ptes(f, mm, 0, f.nr)
        self.unmap_pmd(f, mm)

    # -- the questions the kernel asks per page -----------------------------------------
    def _walk(self, f, vmas):
        return sum(vmas.get(m, 1) for m in f.mms())

    def ask_pages(self, mm, vmas=None):
        """Everything /proc asks about the pages ``mm`` maps: kpagecount,
        PM_MMAP_EXCLUSIVE, and PSS; compares each mode's answer with the truth."""
        vmas = vmas or {}
        true_pss = {m: 0.0 for m in MODES}
        truth_pss = 0.0
        for f in self.folios:
            avg = f.average()
            for i in range(f.nr):
                if not f.mapped_by(mm, i):
                    continue
                exact = f.page_mapcount(i)
                truth_pss += PAGE_SIZE / exact
                for m in MODES:
                    c = self.costs[m]
                    c.questions["kpagecount"] += 1
                    c.questions["exclusive"] += 1
                    c.questions["pss"] += 1
                    if m in ("per_page", "per_page_no_mm_id"):
                        true_pss[m] += PAGE_SIZE / exact
                        continue
                    if m == "per_folio":             # an rmap walk per page, exact
                        c.walk_steps += self._walk(f, vmas)
                        true_pss[m] += PAGE_SIZE / exact
                        continue
                    # mm_id: averages and the shared bit
                    if avg != exact:
                        c.wrong_kpagecount += 1
                    if (not f.maybe_shared()) != (exact == 1):
                        c.wrong_exclusive += 1
                    true_pss[m] += PAGE_SIZE / avg
        for m in MODES:
            self.costs[m].pss_error += abs(true_pss[m] - truth_pss)

    def ask_partial(self):
        """Is each large folio partially mapped (deferred split)?  per-page
        modes: ``_nr_pages_mapped`` < nr; mm_id: average < 1; per_folio: a walk."""
        for f in self.folios:
            if f.large == 0:
                continue
            truth = f.entire == 0 and any(f.page_mapcount(i) == 0 for i in range(f.nr))
            for m in MODES:
                c = self.costs[m]
                c.questions["partial"] += 1
                if m == "mm_id":
                    said = f.entire == 0 and (f.large - f.entire) < f.nr   # average below 1
                    if truth and not said:
                        c.missed_partial += 1
                elif m == "per_folio":
                    c.walk_steps += self._walk(f, {})

    def write_fault(self, f, mm, i):
        """``mm`` writes page ``i`` of ``f`` through a read-only PTE: is the
        folio exclusively this MM's (it could reuse), and which mode copies?
        (No page is remapped: the question only.)"""
        alone = f.mms() == {mm}
        for m in MODES:
            c = self.costs[m]
            c.questions["cow"] += 1
            if not alone:
                continue
            if m == "per_page_no_mm_id":
                c.cow_copies += 1         # before v6.15: never reuse a page of a large folio


# -- workloads ------------------------------------------------------------------------------

#: the page of each folio that child ``j`` (0, 1, 2...) writes in thp-fork: a different page per child
THP_COW_STRIDE = 7

def _read(who):
    return (f"/proc is read for every page {who} maps: /proc/kpagecount, pagemap's PM_MMAP_EXCLUSIVE and smaps "
            "PSS are checked against the exact answer")
_PARTIAL = "the deferred split queue's question, \"is this THP partially mapped?\", is asked of every THP"


def thp_fork(sim, size=8, children=3):
    """A parent with ``size`` PMD-mapped 2 MiB THPs forks ``children``
    children (copy_huge_pmd(): each child's PMD maps the folio too); child
    ``j`` writes page ``7*j`` of each THP (a different page per child):
    do_huge_pmd_wp_page() splits that child's PMD and the fault falls back
    to a 4 KiB copy (since v5.8, 3917c80280c9), so the child stops mapping
    that one page.  /proc is read for every process while the children
    live; then the children exit and /proc is read for the parent."""
    folios = [sim.new_folio(512) for _ in range(size)]
    P = 1
    sim.step(f"The parent maps {size} THPs of 2 MiB, each by one PMD.")
    for f in folios:
        sim.map_pmd(f, P)
    kids = list(range(2, 2 + children))
    sim.step(f"It forks {children} children: each child's PMD maps every THP too.")
    for c in kids:
        for f in folios:
            sim.map_pmd(f, c)
    pages = [(THP_COW_STRIDE * j) % 512 for j in range(children)]
    sim.step(f"Child j writes page {THP_COW_STRIDE}*j of every THP (pages {', '.join(map(str, pages))}: a different "
             "page per child): its PMD is split into 512 PTEs and that one page is replaced by a 4 KiB copy.")
    for j, c in enumerate(kids):
        for f in folios:
            sim.split_pmd(f, c)
            sim.unmap_ptes(f, c, (THP_COW_STRIDE * j) % 512, 1)
    sim.step("While the children live, " + _read("each process (parent and children)") + "; " + _PARTIAL + ".")
    for mm in [P] + kids:
        sim.ask_pages(mm)
    sim.ask_partial()
    sim.step("The children exit (their remaining PTEs are unmapped).")
    for c in kids:
        for f in folios:
            sim.unmap_ptes(f, c, 0, (THP_COW_STRIDE * (c - 2)) % 512)
            rest = (THP_COW_STRIDE * (c - 2)) % 512 + 1
            if rest < 512:
                sim.unmap_ptes(f, c, rest, 512 - rest)
    sim.step("Then " + _read("the parent, alone again,") + ".")
    sim.ask_pages(P)


def mthp_fork(sim, size=64, children=3):
    """The same with ``size`` 64 KiB mTHPs (16 pages, PTE-mapped): fork
    copies the batch (copy_present_ptes(): folio_try_dup_anon_rmap_ptes()),
    child ``j`` COWs page ``j`` of each folio and keeps the rest, /proc is
    read, the children exit one by one, /proc is read for the parent, and
    the parent writes each folio's first page again, now alone (the v6.15
    COW reuse question)."""
    folios = [sim.new_folio(16) for _ in range(size)]
    P = 1
    sim.step(f"The parent maps {size} mTHPs of 64 KiB (16 pages each), by 16 PTEs each.")
    for f in folios:
        sim.map_ptes(f, P, 0, 16)
    kids = list(range(2, 2 + children))
    sim.step(f"It forks {children} children: each child's 16 PTEs map every mTHP too.")
    for c in kids:
        for f in folios:
            sim.map_ptes(f, c, 0, 16)
    sim.step(f"Child j writes page j of every mTHP (pages {', '.join(str(j % 16) for j in range(children))}: a "
             "different page per child), which a COW fault replaces by a 4 KiB copy in that child.")
    for j, c in enumerate(kids):
        for f in folios:
            sim.unmap_ptes(f, c, j % 16, 1)
    sim.step("While the children live, " + _read("each process (parent and children)") + ".")
    for mm in [P] + kids:
        sim.ask_pages(mm)
    sim.step("The children exit one by one.")
    for c in kids:
        for f in folios:
            for i in range(16):
                if f.pte[i][c]:
                    sim.unmap_ptes(f, c, i, 1)
    sim.step("Then " + _read("the parent, alone again,") + ".")
    sim.ask_pages(P)
    sim.step("The parent writes page 0 of every mTHP through its read-only PTE: may the fault reuse the page "
             "(the folio is the parent's alone), or does a mode make it copy?")
    for f in folios:
        sim.write_fault(f, P, 0)


def partial_unmap(sim, size=8, children=2):
    """A parent PMD-maps ``size`` THPs and forks ``children``; every child
    unmaps the first half of each THP (munmap splits its PMD:
    __split_huge_pmd()), then the parent unmaps the first quarter.  The
    first quarter is now mapped by nobody: each folio is partially mapped
    and belongs on the deferred split queue.  /proc is read and the
    deferred split question asked while the children live, and again after
    they exit."""
    folios = [sim.new_folio(512) for _ in range(size)]
    P = 1
    kids = list(range(2, 2 + children))
    sim.step(f"The parent maps {size} THPs of 2 MiB by one PMD each and forks {children} children (one PMD each "
             "too).")
    for f in folios:
        sim.map_pmd(f, P)
        for c in kids:
            sim.map_pmd(f, c)
    sim.step("Every child unmaps the first half (pages 0-255) of every THP: munmap splits its PMD.")
    for c in kids:
        for f in folios:
            sim.split_pmd(f, c)
            sim.unmap_ptes(f, c, 0, 256)
    sim.step("The parent unmaps the first quarter (pages 0-127) of every THP: pages 0-127 are mapped by nobody.")
    for f in folios:
        sim.split_pmd(f, P)
        sim.unmap_ptes(f, P, 0, 128)
    sim.step("While the children live, " + _read("each process (parent and children)") + "; " + _PARTIAL + ".")
    for mm in [P] + kids:
        sim.ask_pages(mm)
    sim.ask_partial()
    sim.step("The children exit (their pages 256-511 are unmapped).")
    for c in kids:
        for f in folios:
            sim.unmap_ptes(f, c, 256, 256)
    sim.step("Then " + _read("the parent, alone again,") + "; " + _PARTIAL + " again.")
    sim.ask_pages(P)
    sim.ask_partial()


def workload_spec(names=None):
    """The large-folio workloads step by step, as the code runs them (the
    sizes are the defaults): what each process does, to which pages, and
    at which steps /proc and the deferred split queue are asked.  An answer
    counts as wrong for a workload if it is wrong at *any* of those reads.
    Returns :class:`~mmkit.table.Tables`, one table per workload."""
    names = list(LARGE_WORKLOADS) if names is None else list(names)
    out = []
    for n in names:
        fn, size, what = LARGE_WORKLOADS[n]
        sim = LargeFolioSim()
        fn(sim, size)
        rows = [[i, st, "yes" if ("/proc is read" in st or "deferred split" in st) else ""]
                for i, st in enumerate(sim.steps, 1)]
        out.append(Table(["step", "what happens", "answers checked here"], rows, f"{n}: {size} {what}"))
    return Tables(out)


#: name -> (function, default size, what the size counts)
LARGE_WORKLOADS = {
    "thp-fork": (thp_fork, 8, "2 MiB THPs"),
    "mthp-fork": (mthp_fork, 64, "64 KiB mTHPs"),
    "partial-unmap": (partial_unmap, 8, "2 MiB THPs"),
}


@dataclass
class LargeResult:
    name: str
    size: int
    costs: dict
    events: Counter
    seconds: float


def run_large(name, size=None):
    """Run one large-folio workload; returns a result with ``costs[mode]``."""
    from ..errors import InvalidArgument
    if name not in LARGE_WORKLOADS:
        raise InvalidArgument(f"unknown workload {name!r}; expected one of {', '.join(LARGE_WORKLOADS)}")
    fn, default, _ = LARGE_WORKLOADS[name]
    size = default if size is None else size
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InvalidArgument(f"size must be a positive int, not {size!r}")
    sim = LargeFolioSim()
    t0 = time.perf_counter()
    fn(sim, size)
    return LargeResult(name, size, sim.costs, sim.events, time.perf_counter() - t0)


def run_large_all():
    """Every large-folio workload at its default size: {name: result}."""
    return {n: run_large(n) for n in LARGE_WORKLOADS}


_COST_HEAD = ["mode", "counter updates", "struct pages written", "rmap walk steps"]
_ACC_HEAD = ["mode", "kpagecount wrong (pages)", "PM_MMAP_EXCLUSIVE wrong (pages)", "PSS error (KiB)",
             "partial folios missed", "COW copies of pages mapped by one process"]


def large_costs_table(results):
    """Per workload, per mode: what keeping the counters cost."""
    return Tables(Table(_COST_HEAD, [[m, r.costs[m].updates, r.costs[m].pages_touched, r.costs[m].walk_steps]
                                     for m in MODES],
                        f"{name}: {r.size} {LARGE_WORKLOADS[name][2]}, {sum(r.events.values())} rmap calls")
                  for name, r in results.items())


def large_accuracy_table(results):
    """Per workload, per mode: which answers came out wrong (0 everywhere for the exact modes)."""
    return Tables(Table(_ACC_HEAD, [[m, c.wrong_kpagecount, c.wrong_exclusive, round(c.pss_error / 1024, 1),
                                     c.missed_partial, c.cow_copies]
                                    for m, c in ((m, r.costs[m]) for m in MODES)],
                        f"{name}: {sum(r.costs[MODES[0]].questions.values())} questions asked")
                  for name, r in results.items())


def large_conclusions(results):
    """Sentences computed from the results (every number measured)."""
    from .mapcount import _Sentences
    out = _Sentences()
    up = {m: sum(r.costs[m].updates for r in results.values()) for m in MODES}
    pg = {m: sum(r.costs[m].pages_touched for r in results.values()) for m in MODES}
    out.append(f"Per-page mapcounts cost {up['per_page']} counter updates over the {len(results)} workloads "
               f"and wrote {pg['per_page']} struct pages; without them (CONFIG_NO_PAGE_MAPCOUNT) "
               f"{up['mm_id']} updates and {pg['mm_id']} struct pages "
               f"({up['per_page'] / max(1, up['mm_id']):.0f}x fewer updates).")
    wk = sum(r.costs["mm_id"].wrong_kpagecount for r in results.values())
    we = sum(r.costs["mm_id"].wrong_exclusive for r in results.values())
    q = sum(r.costs["mm_id"].questions["kpagecount"] for r in results.values())
    pss = sum(r.costs["mm_id"].pss_error for r in results.values()) / 1024
    out.append(f"The price: of {q} pages asked about, /proc/kpagecount gave {wk} an average instead of "
               f"their own mapcount, pagemap's PM_MMAP_EXCLUSIVE was wrong for {we}, and PSS was off by "
               f"{pss:.0f} KiB in total.")
    mp = sum(r.costs["mm_id"].missed_partial for r in results.values())
    if mp:
        out.append(f"{mp} partially mapped THPs were not recognised by the average (< 1) test, so they "
                   f"would not be queued for deferred split.")
    cc = sum(r.costs["per_page_no_mm_id"].cow_copies for r in results.values())
    cm = sum(r.costs["mm_id"].cow_copies for r in results.values())
    if cc:
        out.append(f"Without MM slots (before v6.15) {cc} write faults copied a page its process alone mapped; "
                   f"with them (v6.15) {cm}.")
    ws = sum(r.costs["per_folio"].walk_steps for r in results.values())
    out.append(f"One count per folio (Wilcox's proposal) is the cheapest to keep ({up['per_folio']} updates), "
               f"but every per-page answer then needs an rmap walk: {ws} walk steps here.")
    return out


_STYLE = {"per_page": ("#0072B2", ""), "per_page_no_mm_id": ("#56B4E9", "//"), "mm_id": ("#009E73", ".."),
          "per_folio": ("#E69F00", "xx")}


_LABELS = {"per_page": "per_page: default since v6.15", "per_page_no_mm_id": "per_page_no_mm_id: v6.10 to v6.14",
           "mm_id": "mm_id: CONFIG_NO_PAGE_MAPCOUNT (v6.15)",
           "per_folio": "per_folio: one count per folio, Wilcox 2023 (not merged)"}


def plot_large(results):
    """Six panels, one group of bars per workload and one bar per mode (log
    scales), each panel one quantity in one unit: what keeping the counters
    cost (counter updates; rmap walk steps for per-page answers) and each
    kind of wrong answer on its own (pages whose kpagecount was wrong;
    pages whose PM_MMAP_EXCLUSIVE bit was wrong; partially mapped THPs the
    deferred split test missed; write faults that copied a page its
    process alone mapped).  Returns the matplotlib Figure."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    names = list(results)
    fig = Figure(figsize=(12, 7.0), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    w = 0.8 / len(MODES)
    panels = [(lambda c: c.updates, "cost: rmap counter updates"),
              (lambda c: c.walk_steps, "cost: rmap walk steps for per-page answers"),
              (lambda c: c.cow_copies, "wrong: write faults that copied a page\nits process alone mapped"),
              (lambda c: c.wrong_kpagecount, "wrong: pages whose /proc/kpagecount\nwas not their mapcount"),
              (lambda c: c.wrong_exclusive, "wrong: pages whose PM_MMAP_EXCLUSIVE bit\nwas wrong"),
              (lambda c: c.missed_partial, "wrong: partially mapped THPs the\ndeferred split test missed")]
    for ax, (get, title) in zip(axes, panels):
        top = 1
        for j, m in enumerate(MODES):
            color, hatch = _STYLE[m]
            xs = [i + (j - (len(MODES) - 1) / 2) * w for i in range(len(names))]
            vals = [get(results[n].costs[m]) for n in names]
            top = max([top] + vals)
            ax.bar(xs, vals, w, color=color, hatch=hatch, edgecolor="white", linewidth=0)
            for x, v in zip(xs, vals):
                if v == 0:
                    ax.text(x, 0.05, "0", ha="center", va="bottom", fontsize=7, color=color, fontweight="bold")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(0, top * 5)
        ax.set_xticks(range(len(names)), [f"{n}\n{results[n].size} {LARGE_WORKLOADS[n][2]}" for n in names],
                      fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(title + " (log scale)", fontsize=9)
    axes[0].set_ylabel("count", fontsize=8)
    axes[3].set_ylabel("count", fontsize=8)
    fig.legend(handles=[Patch(facecolor=_STYLE[m][0], hatch=_STYLE[m][1], edgecolor="white", label=_LABELS[m])
                        for m in MODES],
               loc="outside lower center", ncols=4, fontsize=8, frameon=False,
               title='a "0" at the foot of a bar: measured zero (a log scale cannot draw it); PSS errors are in '
                     'the accuracy table', title_fontsize=8)
    return fig


def with_decisions(scenario):
    """A copy of ``scenario`` (a name or a Scenario) whose write steps report
    what the write fault decided, as their outcome: ``"no fault"`` (the PTE
    was writable), ``"reuse"`` (same page, now writable) or ``"copy"`` (a new
    page).  A step named ``"<who> writes <X>"`` is judged on the page watched
    as ``"<who> <X>"``.  The side-by-side era widgets then show where eras
    decide differently, not only where their pages differ.

    >>> sc = with_decisions("thp_fork_cow")
    >>> from mmkit import Kernel
    >>> [r.outcome for r in sc.run(Kernel(era="6.18"))][2:]
    ['copy', 'copy', None, 'reuse']
    """
    from ..scenario import Scenario
    from ..scenarios import get
    base = get(scenario) if isinstance(scenario, str) else scenario
    watch = {w[0]: w for w in base.watch}
    sc = Scenario(base.name, base.title + " (each write says what it did)", watch=base.watch)
    for st in base.steps:
        words = st.name.split(" writes ")
        label = f"{words[0]} {words[1]}" if len(words) == 2 else None
        if label not in watch:
            sc.add(st.name, st.explain, st.fn)
            continue

        def judged(k, s, fn=st.fn, w=watch[label]):
            where = lambda: (getattr(s, w[1]), getattr(s, w[2]) + (w[3] if len(w) > 3 else 0) * k.PAGE_SIZE)
            before = k.page(*where())
            fn(k, s)
            after = k.page(*where())
            if before.present and before.writable:
                return "no fault"
            return "reuse" if after.pfn == before.pfn else "copy"
        sc.add(st.name, st.explain, judged)
    return sc
