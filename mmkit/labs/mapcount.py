"""The mapcount debate, measured: five ways to track "who maps this page".

In December 2021 Matthew Wilcox and Linus Torvalds asked whether
``->mapcount`` is needed at all, whether three states (not mapped / mapped
once / maybe mapped more) would do, or a bit saying "was ever mapped"
(LKML, "[PATCH v1 06/11] mm: support GUP-triggered unsharing via
FAULT_FLAG_UNSHARE (!hugetlb)", Dec 2021).  This module makes the question
an experiment.

A :class:`MapcountLab` attaches to a model kernel through
``k.rmap_observer``, which the rmap helpers call on every mapcount change.
It feeds five trackers (:data:`MODES`) with the same map/unmap events and
counts what each one costs to keep up to date.  At the points where the
kernel asks a question of the mapcount, the workload asks every tracker:

* ``"truncate"`` and ``"migrate"`` -- is this folio mapped at all?
  (``folio_mapped()``: truncate_cleanup_folio() and migrate_folio_unmap()
  skip the rmap walk when it is not: mm/truncate.c: truncate_cleanup_folio(),
  mm/migrate.c: migrate_folio_unmap()).  A tracker
  that says "maybe" pays the walk; one that knows the count also stops the
  walk early once every mapping is found (try_to_migrate()'s ``done``,
  folio_not_mapped(), mm/rmap.c).
* ``"pagemap"`` -- is this page mapped exactly once?  (pagemap's
  PM_MMAP_EXCLUSIVE and USS, fs/proc/task_mmu.c: pte_to_pagemap_entry(),
  smaps_account().)
* ``"cow"`` -- may a write fault reuse this page?  The mapcount-era rule
  (up to v5.8: reuse iff mapcount == 1, mm/memory.c: do_wp_page() ->
  reuse_swap_page()); today's kernel asks the refcount instead
  (09854ba94c6a "mm: do_wp_page() simplification", v5.9; mm/memory.c:
  wp_can_reuse_anon_folio()).

A tracker that cannot answer falls back to an rmap walk
(over the VMAs :func:`mmkit.rmap.rmap_walk` visits, on the model's real anon_vma chains and
i_mmap) -- the ``"walk"`` policy.  The ``"guess"`` policy instead answers
the safe side without walking ("maybe shared": copy, report "not
exclusive"), and every such answer that differs from the exact tracker's
is a *wrong answer*.  (For truncation and migration there is no safe guess:
skipping the unmap walk of a mapped folio would leave a PTE to a freed
page, so "maybe" always walks.)

The model's folios are all small, so the folio-level total (``"folio"``)
is the same number as the per-page mapcount: they differ only for large
folios (mm/rmap.c: __folio_add_rmap(); CONFIG_NO_PAGE_MAPCOUNT, v6.15),
which the notebook explains.

Examples
--------
>>> r = run_workload("truncate", 2000)
>>> r.costs["exact"].total("walks"), r.costs["none"].total("walks") == 2000
(0, True)
"""

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..kernel import Kernel
from ..memory import FAULT_AROUND_PAGES, unmap_mapping_range
from ..migrate import migrate_pages
from ..pageinfo import PAGE_SIZE
from ..rmap import page_vma_mapped, rmap_vmas
from ..table import Table, Tables

__all__ = ["MODES", "SITES", "METRICS", "Tracker", "Exact", "FolioTotal", "ThreeState", "EverMapped",
           "NoMapcount", "Costs", "MapcountLab", "LabResult", "WORKLOADS", "run_workload", "run_all",
           "sweep", "conclusions", "plot_costs", "plot_sweep", "results_table", "costs_table", "kernel_table",
           "png", "explorer", "EXPLORER_SIZES"]

#: The questions the kernel asks of the mapcount (see the module docstring).
SITES = ("truncate", "migrate", "pagemap", "cow")
#: The cost counters, in the order tables and plots show them.
METRICS = ("atomics", "walk_steps", "walks", "wasted", "wrong")
_METRIC_NAMES = {"atomics": "counter updates", "walk_steps": "rmap walk steps", "walks": "rmap walks",
                 "wasted": "walks that found nothing", "wrong": "wrong answers (guess policy)"}


# -- the trackers ----------------------------------------------------------------------

class Tracker:
    """One way of tracking mappings.  Each answer is True, False, or None
    ("cannot tell"); a definite answer must always be right.

    ``on_map`` / ``on_unmap`` / ``learn`` return the number of counter
    updates (atomic writes) they made.
    """

    name = ""
    #: Bits of state per page (small folio).
    bits = 0
    #: What the kernel did with this idea (for the notebook's table).
    kernel = ""

    def __init__(self):
        self.state = {}

    def on_map(self, pfn):
        return 0

    def on_unmap(self, pfn):
        return 0

    def mapped(self, pfn):
        """folio_mapped(): is any PTE mapping the folio?"""
        return None

    def count(self, pfn):
        """The exact number of mappings, if known (lets a walk stop early)."""
        return None

    def exclusive(self, pfn):
        """Is the page mapped exactly once?"""
        return None

    def learn(self, pfn, count):
        """An rmap walk just counted ``count`` mappings (2 means "2 or more")."""
        return 0


class Exact(Tracker):
    """Today's per-page mapcount: ``page->_mapcount``, one atomic per PTE
    mapped or unmapped (mm/rmap.c: __folio_add_rmap(), __folio_remove_rmap();
    include/linux/mm.h: folio_mapcount())."""

    name = "exact"
    bits = 32
    kernel = ("per-page _mapcount (mm/rmap.c: __folio_add_rmap()), still maintained with "
              "CONFIG_PAGE_MAPCOUNT, the default; an April 2026 RFC, \"mm/rmap: support arbitrary folio "
              "mappings\", would drop it (not merged)")

    def on_map(self, pfn):
        self.state[pfn] = self.state.get(pfn, 0) + 1
        return 1

    def on_unmap(self, pfn):
        self.state[pfn] -= 1
        return 1

    def mapped(self, pfn):
        return self.state.get(pfn, 0) > 0

    def count(self, pfn):
        return self.state.get(pfn, 0)

    def exclusive(self, pfn):
        return self.state.get(pfn, 0) == 1


class FolioTotal(Exact):
    """A folio-level total (``_large_mapcount``): the only mapcount left for
    large folios under CONFIG_NO_PAGE_MAPCOUNT (v6.15, e63ee43e3eda).  For a
    small folio it *is* the page's mapcount, so in this model (small folios
    only) it behaves exactly like :class:`Exact`."""

    name = "folio"
    kernel = ("include/linux/mm.h: folio_large_mapcount(); alone under CONFIG_NO_PAGE_MAPCOUNT (v6.15, "
              "e63ee43e3eda), where pagemap's 'exclusive' comes from folio_maybe_mapped_shared() instead")


class ThreeState(Tracker):
    """Willy's proposal: not mapped (0) / mapped once (1) / maybe mapped more (2).

    Map: 0 -> 1 -> 2, then no more writes.  Unmap: 1 -> 0; from 2 nothing
    can be written, because the tracker cannot know whether one mapping
    is left or none.  So state 0 and state 1 are always exact, and state
    2 means "maybe".  An rmap walk that counts the mappings may write the
    true state back (:meth:`learn`, one more write).
    """

    name = "three_state"
    bits = 2
    kernel = ("folio_mapped() shortcuts answer 'not mapped' (mm/truncate.c: truncate_cleanup_folio(), "
              "mm/migrate.c: migrate_folio_unmap()); include/linux/mm.h: folio_maybe_mapped_shared() "
              "(CONFIG_MM_ID, v6.15) is the 'mapped once / maybe more' answer for large folios")

    def on_map(self, pfn):
        s = self.state.get(pfn, 0)
        if s < 2:
            self.state[pfn] = s + 1
            return 1
        return 0

    def on_unmap(self, pfn):
        if self.state[pfn] == 1:
            self.state[pfn] = 0
            return 1
        return 0

    def mapped(self, pfn):
        s = self.state.get(pfn, 0)
        return None if s == 2 else s == 1

    def count(self, pfn):
        s = self.state.get(pfn, 0)
        return None if s == 2 else s

    def exclusive(self, pfn):
        s = self.state.get(pfn, 0)
        return None if s == 2 else s == 1

    def learn(self, pfn, count):
        s = min(count, 2)
        if self.state.get(pfn, 0) != s:
            self.state[pfn] = s
            return 1
        return 0


class EverMapped(Tracker):
    """One sticky bit: "this folio was mapped at some time".  Only "never
    mapped" is a definite answer (not mapped, not mapped once)."""

    name = "ever_mapped"
    bits = 1
    kernel = ("no kernel counterpart; its one definite answer, 'never mapped', is a weaker form of the "
              "folio_mapped() shortcut (mm/truncate.c: truncate_cleanup_folio())")

    def on_map(self, pfn):
        if pfn in self.state:
            return 0
        self.state[pfn] = True
        return 1

    def mapped(self, pfn):
        return None if pfn in self.state else False

    def count(self, pfn):
        return None if pfn in self.state else 0

    def exclusive(self, pfn):
        return None if pfn in self.state else False


class NoMapcount(Tracker):
    """No tracking at all: every question is an rmap walk."""

    name = "none"
    kernel = ("COW needs none since v5.9 (09854ba94c6a \"mm: do_wp_page() simplification\") and v5.18 "
              "(3bff7e3f1f16 / c145e0b47c77, THP and swap-in too): reuse is decided on the refcount "
              "(mm/memory.c: wp_can_reuse_anon_folio())")


#: The modes, in display order.
MODES = {t.name: t for t in (Exact, FolioTotal, ThreeState, EverMapped, NoMapcount)}


# -- costs and the harness ---------------------------------------------------------------

@dataclass
class Costs:
    """What one tracking mode paid during a workload.

    Attributes
    ----------
    atomics : Counter
        Counter updates, by phase (``"fault"``, ``"fork"``, ``"exit"``,
        ``"truncate"``, ``"migrate"``...).
    questions, answered : Counter
        Questions asked, and answered without a walk, by site.
    walks, walk_steps, wasted : Counter
        rmap walks (walk policy), VMAs they visited, and walks that found
        no mapping at all, by site.
    wrong : Counter
        Guess policy: answers that differ from the exact tracker's, by site.
    """

    atomics: Counter = field(default_factory=Counter)
    questions: Counter = field(default_factory=Counter)
    answered: Counter = field(default_factory=Counter)
    walks: Counter = field(default_factory=Counter)
    walk_steps: Counter = field(default_factory=Counter)
    wasted: Counter = field(default_factory=Counter)
    wrong: Counter = field(default_factory=Counter)

    def total(self, metric):
        """The sum of one counter over all phases or sites."""
        return sum(getattr(self, metric).values())


class MapcountLab:
    """Feed every tracker from ``k.rmap_observer`` and ask them questions.

    Parameters
    ----------
    k : Kernel
        Its ``rmap_observer`` is taken over (an existing one is still called).
    modes : iterable of str
        Names from :data:`MODES`.

    Notes
    -----
    Whenever a tracker gives a definite answer it is compared with the
    model's exact mapcount; a mismatch raises AssertionError (a tracker
    bug, never a cost).
    """

    def __init__(self, k, modes=MODES):
        self.k = k
        self.trackers = {m: MODES[m]() for m in modes}
        self.costs = {m: Costs() for m in modes}
        self.events = Counter()
        self.current = "setup"
        self._chained = k.rmap_observer
        self._pairs = [(self.trackers[m], self.costs[m].atomics) for m in self.trackers]
        k.rmap_observer = self._observe

    def _observe(self, event, folio, vma):
        phase = self.current
        self.events[phase] += 1
        pfn = folio.pfn
        if event == "map":
            for tr, atomics in self._pairs:
                n = tr.on_map(pfn)
                if n:
                    atomics[phase] += n
        else:
            for tr, atomics in self._pairs:
                n = tr.on_unmap(pfn)
                if n:
                    atomics[phase] += n
        if self._chained is not None:
            self._chained(event, folio, vma)

    @contextmanager
    def phase(self, name):
        """Attribute the counter updates made inside the block to ``name``."""
        old, self.current = self.current, name
        try:
            yield
        finally:
            self.current = old

    def _walk(self, folio, stop_at):
        """A dry rmap walk of ``folio`` that stops once ``stop_at`` mappings
        are found (None: visit every candidate VMA); returns (steps, hits).
        It visits the same VMAs as :func:`mmkit.rmap.rmap_walk` but changes
        nothing: no trace event, and not counted in ``k.walk_steps`` (the
        kernel's own walks)."""
        steps = hits = 0
        for vma in rmap_vmas(folio):
            if stop_at is not None and hits >= stop_at:
                break
            steps += 1
            addr = vma.vma_address(folio.index)
            if addr is not None and page_vma_mapped(vma, addr, folio):
                hits += 1
        return steps, hits

    def ask_mapped(self, folio, site):
        """folio_mapped() before an unmap walk (truncation, migration).

        A tracker that says "not mapped" skips the walk; otherwise the walk
        runs, and stops early only if the tracker knows the count.
        """
        truth = folio.mapcount
        pfn = folio.pfn
        for m, tr in self.trackers.items():
            c = self.costs[m]
            c.questions[site] += 1
            ans = tr.mapped(pfn)
            if ans is False:
                assert truth == 0, f"{m} says pfn {pfn} is not mapped, mapcount is {truth}"
                c.answered[site] += 1
                continue
            known = tr.count(pfn)
            if known is not None:
                assert known == truth, f"{m} counts {known} mappings of pfn {pfn}, mapcount is {truth}"
            steps, hits = self._walk(folio, known)
            c.walks[site] += 1
            c.walk_steps[site] += steps
            if hits == 0:
                c.wasted[site] += 1
            if ans is True:
                c.answered[site] += 1

    def ask_exclusive(self, folio, site):
        """Is ``folio`` mapped exactly once (pagemap, mapcount-era COW)?

        Walk policy: a tracker that cannot tell walks until it has seen two
        mappings (or all candidates) and may write what it learnt back.
        Guess policy: it answers "no" (maybe shared), wrong when the page
        is in fact mapped once.  Returns the exact answer.
        """
        truth = folio.mapcount == 1
        pfn = folio.pfn
        for m, tr in self.trackers.items():
            c = self.costs[m]
            c.questions[site] += 1
            ans = tr.exclusive(pfn)
            if ans is not None:
                assert ans == truth, f"{m} says exclusive={ans} for pfn {pfn}, mapcount is {folio.mapcount}"
                c.answered[site] += 1
                continue
            if truth:
                c.wrong[site] += 1
            steps, hits = self._walk(folio, 2)
            c.walks[site] += 1
            c.walk_steps[site] += steps
            if hits == 0:
                c.wasted[site] += 1
            n = tr.learn(pfn, hits)
            if n:
                c.atomics[self.current] += n
        return truth

    def write(self, proc, addr, data=b"w"):
        """``proc`` writes ``addr``; a write fault on a read-only anon PTE
        first asks the mapcount-era COW question (site ``"cow"``)."""
        e = proc.mm.pte(addr)
        if e is not None and e.present and not e.write and e.folio.anon:
            self.ask_exclusive(e.folio, "cow")
        proc.write(addr, data)

    def detach(self):
        """Give ``k.rmap_observer`` back."""
        self.k.rmap_observer = self._chained


# -- workloads -----------------------------------------------------------------------------

def fork_heavy(lab, size=2000, pages=16):
    """A shell spawning ``size`` short-lived children.

    The shell maps and writes ``pages`` pages; each child writes one page
    (a COW fault) and exits; after each child the shell writes one of its
    pages again (a write fault: fork write-protected them all).
    """
    k = lab.k
    with lab.phase("fault"):
        sh = k.spawn("shell")
        a = sh.mmap(pages)
        for i in range(pages):
            sh.write(a + i * PAGE_SIZE, b"env")
    for i in range(size):
        with lab.phase("fork"):
            c = sh.fork("child")
        with lab.phase("fault"):
            lab.write(c, a, b"child")
        with lab.phase("exit"):
            c.exit()
        with lab.phase("fault"):
            lab.write(sh, a + (i % pages) * PAGE_SIZE, b"shell")


def long_lived(lab, size=1000, pages=16):
    """A long-lived parent with ``size`` children that stay, sharing its memory.

    Each child writes one page (COW).  Then the parent reads its pagemap,
    writes all its pages (its copies are exclusive, but live in the root
    anon_vma that every child is linked to), reads its pagemap again, and
    is compacted (all its pages migrated).
    """
    k = lab.k
    with lab.phase("fault"):
        p = k.spawn("server")
        a = p.mmap(pages)
        for i in range(pages):
            p.write(a + i * PAGE_SIZE, b"data")
    for i in range(size):
        with lab.phase("fork"):
            c = p.fork("worker")
        with lab.phase("fault"):
            lab.write(c, a + (i % pages) * PAGE_SIZE, b"mine")

    def pagemap():
        for i in range(pages):
            lab.ask_exclusive(p.mm.pte(a + i * PAGE_SIZE).folio, "pagemap")
    pagemap()
    with lab.phase("fault"):
        for i in range(pages):
            lab.write(p, a + i * PAGE_SIZE, b"new")
    pagemap()
    with lab.phase("migrate"):
        todo = []
        for i in range(pages):
            folio = p.mm.pte(a + i * PAGE_SIZE).folio
            lab.ask_mapped(folio, "migrate")
            todo.append((a + i * PAGE_SIZE, folio))
        migrate_pages(k, todo)


def _cached_file(k, pages):
    f = k.open("data", pages)
    for i in range(pages):
        f.write(i * PAGE_SIZE, b"cached")
    return f


def _touch_windows(proc, m, size, every, offset=0):
    """Read one page in each fault-around window ``w`` with ``w % every ==
    offset``; fault-around maps the window's 16 cached pages
    (do_fault_around(), 64 KiB), so ``1/every`` of the file gets mapped."""
    for w in range(offset, -(-size // FAULT_AROUND_PAGES), every):
        proc.read(m + w * FAULT_AROUND_PAGES * PAGE_SIZE, 1)


def truncate_cache(lab, size=20000):
    """Truncating a large, mostly unmapped page cache of ``size`` pages.

    Before (each read maps its 64 KiB fault-around window): an indexer
    mapped 10% of the file and exited; two workers both mapped the same 2%
    and one of them exited; a database keeps another 1% mapped.
    truncate_pagecache() first zaps every mapping (unmap_mapping_range()),
    then truncate_inode_pages() asks folio_mapped() of every folio.
    """
    k = lab.k
    f = _cached_file(k, size)
    with lab.phase("fault"):
        indexer = k.spawn("indexer")
        _touch_windows(indexer, indexer.mmap(size, prot="r", shared=True, file=f), size, 10)
        workers = [k.spawn(f"worker{j}") for j in range(2)]
        for w in workers:
            _touch_windows(w, w.mmap(size, prot="r", shared=True, file=f), size, 50, 1)
        db = k.spawn("db")
        _touch_windows(db, db.mmap(size, prot="r", shared=True, file=f), size, 100, 3)
    with lab.phase("exit"):
        indexer.exit()
        workers[0].exit()
    fo = k.files[f.id]
    with lab.phase("truncate"):
        unmap_mapping_range(k, fo, 0, even_cows=True)
        for index in sorted(fo.pages):
            lab.ask_mapped(fo.pages[index], "truncate")
        f.truncate(0)


def migrate_cache(lab, size=20000):
    """Migrating (compacting) ``size`` page-cache pages, mostly unmapped.

    Eight workers map the whole file and each keeps its own 1/80 of it
    mapped (10% in all, each page by one worker); a scanner mapped a
    quarter of the file and exited.  Every folio is then migrated:
    migrate_folio_unmap() asks folio_mapped(), and try_to_migrate() stops
    once the folio is no longer mapped.
    """
    k = lab.k
    f = _cached_file(k, size)
    with lab.phase("fault"):
        scanner = k.spawn("scanner")
        _touch_windows(scanner, scanner.mmap(size, prot="r", shared=True, file=f), size, 4)
        for j in range(8):
            w = k.spawn(f"worker{j}")
            _touch_windows(w, w.mmap(size, prot="r", shared=True, file=f), size, 80, j)
    with lab.phase("exit"):
        scanner.exit()
    fo = k.files[f.id]
    with lab.phase("migrate"):
        for index in sorted(fo.pages):
            folio = fo.pages[index]
            lab.ask_mapped(folio, "migrate")
            migrate_pages(k, [(index, folio)])


#: name -> (function, default size, what the size counts, one-line description)
WORKLOADS = {
    "fork-heavy": (fork_heavy, 2000, "children", "a shell spawning short-lived children"),
    "long-lived": (long_lived, 1000, "children", "a long-lived parent with children sharing its memory"),
    "truncate": (truncate_cache, 20000, "pages", "truncating a large, mostly unmapped page cache"),
    "migrate": (migrate_cache, 20000, "pages", "migrating mostly unmapped page-cache pages"),
}


@dataclass
class LabResult:
    """One workload run: the costs of every mode.

    Attributes
    ----------
    workload : str
    size : int
    costs : dict
        mode -> :class:`Costs`.
    events : Counter
        Map/unmap events seen, by phase.
    questions : Counter
        Questions asked, by site.
    seconds : float
        Wall-clock time of the run (model plus trackers).
    """

    workload: str
    size: int
    costs: dict
    events: Counter
    questions: Counter
    seconds: float

    def row(self, mode):
        """``{metric: total}`` for one mode."""
        return {m: self.costs[mode].total(m) for m in METRICS}


def run_workload(name, size=None, modes=MODES, era="6.18"):
    """Run workload ``name`` at ``size`` (its default if None) on a fast
    kernel (``trace="off"``, ``check=False``) with every tracker attached.

    Raises
    ------
    InvalidArgument
        For an unknown workload or a size below 1.
    """
    from ..errors import InvalidArgument
    if name not in WORKLOADS:
        raise InvalidArgument(f"unknown workload {name!r}; expected one of {', '.join(WORKLOADS)}")
    fn, default, _, _ = WORKLOADS[name]
    size = default if size is None else size
    if not isinstance(size, int) or size < 1:
        raise InvalidArgument(f"size must be a positive int, not {size!r}")
    k = Kernel(era=era, trace="off", check=False)
    lab = MapcountLab(k, modes)
    t0 = time.perf_counter()
    fn(lab, size)
    seconds = time.perf_counter() - t0
    lab.detach()
    first = next(iter(lab.costs.values()))
    return LabResult(name, size, lab.costs, lab.events, Counter(first.questions), seconds)


def run_all(sizes=None):
    """Every workload at its default size (or ``sizes[name]``): {name: LabResult}."""
    sizes = sizes or {}
    return {name: run_workload(name, sizes.get(name)) for name in WORKLOADS}


def sweep(name, sizes, metric="walk_steps"):
    """``{mode: [metric total at each size]}`` for workload ``name``."""
    rows = {m: [] for m in MODES}
    for s in sizes:
        r = run_workload(name, s)
        for m in MODES:
            rows[m].append(r.costs[m].total(metric))
    return rows


# -- reading the results ------------------------------------------------------------------

_HEADER = ["mode"] + [_METRIC_NAMES[m] for m in METRICS]


def costs_table(costs, caption=""):
    """The totals of ``{mode: Costs}`` (a lab's ``costs``), one row per mode."""
    return Table(_HEADER, [[m] + [c.total(x) for x in METRICS] for m, c in costs.items()], caption)


def results_table(results):
    """One block per workload ({name: LabResult}), one row per mode, one column per metric."""
    return Tables(costs_table(r.costs, f"{name}: {r.size} {WORKLOADS[name][2]}, {sum(r.events.values())} "
                                       f"map/unmap events, {sum(r.questions.values())} questions, "
                                       f"{r.seconds:.2f} s")
                  for name, r in results.items())


def kernel_table():
    """Each mode, its state per page, and what the kernel did with the idea."""
    return Table(["mode", "bits per page", "in the kernel"], [[m, t.bits, t.kernel] for m, t in MODES.items()])


class _Sentences(list):
    """Sentences: a bulleted text in a notebook (HTML and Markdown), one
    sentence per line as plain text -- never a Python list's repr."""

    def __str__(self):
        return "\n".join(f"- {s}" for s in self)

    __repr__ = __str__

    def _repr_markdown_(self):
        return "\n".join(f"- {s}" for s in self)

    def _repr_html_(self):
        from html import escape
        return "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in self) + "</ul>"


def _pct(a, b):
    return f"{100 * a / b:.0f}%" if b else "-"


def _sum(results, mode, metric, sites=None):
    """Total of ``metric`` for ``mode`` over ``results``, only at ``sites`` if given."""
    total = 0
    for r in results.values():
        c = getattr(r.costs[mode], metric)
        total += sum(c.values()) if sites is None else sum(c[s] for s in sites)
    return total


def conclusions(results):
    """Sentences computed from ``results`` ({workload: LabResult}).

    Every number in them is measured; which mode wins each comparison is
    decided by the numbers, not written in advance.
    """
    out = _Sentences()
    names = list(results)
    at = {m: _sum(results, m, "atomics") for m in MODES}
    # 1. the price of an exact count
    saving = {n: 1 - r.costs["three_state"].total("atomics") / max(1, r.costs["exact"].total("atomics"))
              for n, r in results.items()}
    best = max(saving, key=saving.get)
    out.append(f"Keeping an exact count cost {at['exact']} counter updates over the {len(names)} workloads; "
               f"three states needed {at['three_state']} ({_pct(at['three_state'], at['exact'])}), the "
               f"ever-mapped bit {at['ever_mapped']} ({_pct(at['ever_mapped'], at['exact'])}). Three states "
               f"save most in {best} ({100 * saving[best]:.0f}% fewer)"
               + (": fork and exit map and unmap pages that are already shared, which three states need not "
                  "record." if best in ("fork-heavy", "long-lived") else "."))
    # 2. "is it mapped at all?"
    unmap = ("truncate", "migrate")
    wasted = {m: _sum(results, m, "wasted", unmap) for m in MODES}
    if wasted["none"]:
        out.append(f"'Is it mapped at all?' (truncation, migration): without any tracking {wasted['none']} "
                   f"rmap walks found nothing; the ever-mapped bit left {wasted['ever_mapped']} of them, three "
                   f"states {wasted['three_state']}, the exact count {wasted['exact']}. The 'not mapped' answer "
                   f"alone removes {_pct(wasted['none'] - wasted['three_state'], wasted['none'])} of the "
                   f"wasted walks.")
    steps = {m: _sum(results, m, "walk_steps", ("migrate",)) for m in MODES}
    if steps["none"]:
        out.append(f"Knowing the count also ends a walk early (try_to_migrate() stops once the folio is "
                   f"unmapped): migration walked {steps['exact']} VMAs with exact counts, "
                   f"{steps['three_state']} with three states (a folio left in 'maybe' is walked to the end), "
                   f"{steps['ever_mapped']} with the ever-mapped bit and {steps['none']} with none.")
    # 3. "is it mapped exactly once?"
    once = ("pagemap", "cow")
    for m in ("three_state", "ever_mapped", "none"):
        wrong = _sum(results, m, "wrong", once)
        extra = _sum(results, m, "walk_steps", once) - _sum(results, "exact", "walk_steps", once)
        if wrong or extra:
            out.append(f"'Mapped exactly once?' (pagemap, mapcount-era COW) with {m}: {extra} more walk steps "
                       f"than exact to answer right, or {wrong} wrong answers when guessing 'maybe shared'.")
    # 4. without the COW question, which the refcount answers today
    rest = ("truncate", "migrate", "pagemap")
    st = {m: _sum(results, m, "walk_steps", rest) for m in MODES}
    wr = {m: _sum(results, m, "wrong", rest) for m in MODES}
    d_at, d_st = at["exact"] - at["three_state"], st["three_state"] - st["exact"]
    if d_st > 0:
        out.append(f"The kernel has not asked the COW question of the mapcount since 5.9 / 5.18 (it asks the "
                   f"refcount). Leaving it out, three states save {d_at} updates and cost {d_st} walk steps: "
                   f"cheaper than exact as long as one rmap walk step costs less than {d_at / d_st:.1f} "
                   f"counter updates.")
    else:
        out.append(f"The kernel has not asked the COW question of the mapcount since 5.9 / 5.18 (it asks the "
                   f"refcount). Leaving it out, three states save {d_at} updates and walk no more than exact.")
    # 5. folio total
    if all(results[n].row("folio") == results[n].row("exact") for n in names):
        out.append("The folio-level total cost exactly what the per-page mapcount cost in every workload: "
                   "for small folios they are the same counter.")
    # 6. the Pareto front, COW question left out
    pts = {m: (at[m], st[m], wr[m]) for m in MODES if m != "folio"}
    front = [m for m in pts if not any(all(b <= a for a, b in zip(pts[m], pts[o])) and pts[o] != pts[m]
                                       for o in pts)]
    out.append("No mode is cheaper on every count (updates, walk steps, wrong answers; COW question left "
               f"out): the trade-off front is {', '.join(front)}." if len(front) > 1 else
               f"Leaving the COW question out, {front[0]} is cheapest on every count.")
    return out


# Okabe-Ito colours (mmkit.viz.style.PALETTE) plus a hatch and a marker each,
# so that the modes stay apart in greyscale and where lines coincide.
_STYLE = {"exact": ("#0072B2", "", "o", "-"), "folio": ("#56B4E9", "//", "s", ":"),
          "three_state": ("#009E73", "..", "^", "-"), "ever_mapped": ("#E69F00", "xx", "D", "--"),
          "none": ("#D55E00", "--", "v", "-")}


def _same_as(series):
    """{mode: earlier mode with exactly the same values} (its line or bars would hide)."""
    out = {}
    modes = list(series)
    for i, m in enumerate(modes):
        for o in modes[:i]:
            if o not in out and series[o] == series[m]:
                out[m] = o
                break
    return out


def plot_costs(results, metrics=("atomics", "walk_steps", "wasted", "wrong")):
    """One panel per workload; grouped bars (log scale) of each metric per mode.

    A measured zero, invisible on a log scale, is marked "0" at the foot of
    its bar; every metric applies to every mode, so no bar is missing.  The
    legend sits above the panels, off the bars, and says which modes
    measured the same in every workload.  Returns the matplotlib Figure
    (not shown; display it yourself).
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    matplotlib.rcParams.setdefault("figure.dpi", 100)
    n = len(results)
    cols = 2 if n > 1 else 1
    rows = -(-n // cols)
    fig = Figure(figsize=(6.2 * cols, 3.1 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    modes = list(MODES)
    width = 0.8 / len(modes)
    same = _same_as({m: [[r.costs[m].total(x) for x in metrics] for r in results.values()] for m in modes})
    for ax, (name, r) in zip(axes, results.items()):
        top = max([r.costs[m].total(x) for m in modes for x in metrics] + [1])
        for j, mode in enumerate(modes):
            vals = [r.costs[mode].total(m) for m in metrics]
            xs = [i + (j - (len(modes) - 1) / 2) * width for i in range(len(metrics))]
            color, hatch, _, _ = _STYLE[mode]
            ax.bar(xs, vals, width, color=color, hatch=hatch, edgecolor="white", linewidth=0)
            for x, v in zip(xs, vals):
                if v == 0:
                    ax.text(x, 0.05, "0", ha="center", va="bottom", fontsize=6, color=color, fontweight="bold")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(0, top * 4)
        ax.set_xticks(range(len(metrics)), [_METRIC_NAMES[m].replace(" (", "\n(") for m in metrics],
                      fontsize=7)
        ax.set_title(f"{name}: {r.size} {WORKLOADS[name][2]}", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("count (log scale)", fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    handles = [Patch(facecolor=_STYLE[m][0], hatch=_STYLE[m][1], edgecolor="white",
                     label=m + (f" (same counts as {same[m]} in every workload)" if m in same else ""))
               for m in modes]
    fig.legend(handles=handles, loc="outside upper center", ncols=3 if same else len(modes), fontsize=7,
               frameon=False, title='a "0" at the foot of a bar: measured zero (a log scale cannot draw it)',
               title_fontsize=7)
    return fig


def plot_sweep(name, sizes, rows, metric="walk_steps"):
    """Lines of ``rows`` (from :func:`sweep`) against ``sizes``; returns the Figure.

    A mode whose line coincides with an earlier one's is drawn dashed and
    thinner on top of it and named in the legend ("hidden under ...");
    measured zeros sit on the "0" line of the log scale, marked hollow.
    The legend sits to the right of the axes, off the lines.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7.2, 3.3), layout="constrained")
    ax = fig.subplots()
    same = _same_as(rows)
    any_zero = False
    for mode, ys in rows.items():
        color, _, marker, line = _STYLE[mode]
        hidden = mode in same
        label = mode + (f"\n(same as {same[mode]}:\nits line hides under it)" if hidden else "")
        ax.plot(sizes, ys, marker=marker, label=label, color=color, linestyle=(0, (3, 3)) if hidden else line,
                markersize=4 if hidden else 6, linewidth=1 if hidden else 1.8, zorder=3 if hidden else 2)
        zx = [x for x, y in zip(sizes, ys) if y == 0]
        if zx and not hidden:
            any_zero = True
            ax.plot(zx, [0] * len(zx), linestyle="none", marker=marker, markersize=8, markerfacecolor="white",
                    markeredgecolor=color, zorder=4)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=-3)
    ax.set_xlabel(WORKLOADS[name][2])
    ax.set_ylabel(_METRIC_NAMES[metric] + " (log scale)")
    ax.set_title(f"{name}: {_METRIC_NAMES[metric]} as the workload grows", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="hollow marker on 0:\nmeasured zero" if any_zero else None, title_fontsize=7)
    return fig


def png(fig):
    """``fig`` as an IPython PNG image (shows the same in Lab, Voila, nbclient and static HTML)."""
    from io import BytesIO
    from IPython.display import Image
    buf = BytesIO()
    fig.savefig(buf, format="png")
    return Image(buf.getvalue())


#: Sizes the explorer offers for each workload.
EXPLORER_SIZES = {"fork-heavy": [250, 500, 1000, 2000, 4000], "long-lived": [125, 250, 500, 1000, 2000],
                  "truncate": [2500, 5000, 10000, 20000, 40000], "migrate": [2500, 5000, 10000, 20000, 40000]}


def explorer(workload="truncate", size=None):
    """A widget: pick a workload and a size, run it, see each mode's costs.

    The figure is drawn as a PNG into an Output (so it also survives static
    export); ``.status`` (a Label) says what is shown, for tests.
    """
    import ipywidgets as w
    wl = w.Dropdown(options=list(WORKLOADS), value=workload, description="workload")
    sz = w.SelectionSlider(options=EXPLORER_SIZES[workload], description="size",
                           value=size or WORKLOADS[workload][1], continuous_update=False)
    out = w.Output()
    table = w.HTML()
    status = w.Label().add_class("mm-status")

    def redraw(change=None):
        if change is not None and change["owner"] is wl:
            opts = EXPLORER_SIZES[wl.value]
            default = WORKLOADS[wl.value][1]
            sz.unobserve(redraw, names="value")
            sz.options = opts
            sz.value = default if default in opts else opts[len(opts) // 2]
            sz.observe(redraw, names="value")
        r = run_workload(wl.value, sz.value)
        fig = plot_costs({wl.value: r})
        out.outputs = ()
        out.append_display_data(png(fig))
        table.value = results_table({wl.value: r})._repr_html_()
        status.value = f"drawn: {wl.value}, {sz.value} {WORKLOADS[wl.value][2]} ({r.seconds:.2f} s)"

    wl.observe(redraw, names="value")
    sz.observe(redraw, names="value")
    redraw()
    box = w.VBox([w.HBox([wl, sz]), out, table, status])
    box.status, box.workload, box.size = status, wl, sz
    return box
