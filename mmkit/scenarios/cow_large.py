"""Large folios, step by step: the cow.c anonymous cases on THPs and mTHPs,
and fork / COW / pin / unshare / partial-unmap / compaction scenarios, run
on the model (era 6.18) and on the live kernel and compared.

The cow.c cases (tools/testing/selftests/mm/cow.c, ``anon_test_cases[]``
run by ``run_with_thp()`` / ``run_with_mthp()``) are run on these
preparations of the memory (cow.c: ``enum thp_run``):

``pmd``
    a PMD-mapped 2 MiB THP (``THP_RUN_PMD``): hugepages-2048kB ``madvise``,
    a 2 MiB-aligned mapping, MADV_HUGEPAGE, one write fault.
``pte``
    the same THP PTE-mapped (``THP_RUN_PTE``): mprotect() of one subpage
    R/O and back splits the PMD (mm/mprotect.c: change_pmd_range() ->
    __split_huge_pmd()).  Then MADV_NOHUGEPAGE on the range, so that
    khugepaged (which only scans VM_HUGEPAGE VMAs when the policy is
    ``madvise``) cannot collapse it back during the scenario.
``single_pte``
    only the first subpage of the PTE-mapped THP stays mapped
    (``THP_RUN_SINGLE_PTE``: MADV_DONTNEED of the rest); the cases work on
    that one page.
``partial_mremap``
    the upper half of the THP was moved away (``THP_RUN_PARTIAL_MREMAP``: a
    PROT_NONE mapping of half the THP's size, then mremap(MREMAP_MAYMOVE |
    MREMAP_FIXED) of the upper half onto it).  The moved extent is not a
    whole PMD, so mm/mremap.c: move_page_tables() splits the PMD first
    (split_huge_pmd()) and move_ptes() moves 256 PTEs: one order-9 folio,
    PTE-mapped in two VMAs of one mm, AE on every page, no counter changed.
    The cases run on the lower half (256 pages); the moved half is watched
    too (``parentR0``, ``childR0``).
``partial_shared``
    the first subpage was shared with a child that exited, the rest never
    was (``THP_RUN_PARTIAL_SHARED``: MADV_DONTFORK of the rest around the fork).
``mthp16``, ``mthp64``, ``mthp1024``
    a 16 KiB, 64 KiB or 1 MiB mTHP (orders 2, 4, 8; ``run_with_mthp()``):
    hugepages-<size> ``always``, hugepages-2048kB ``never``, one write fault
    at a 2 MiB-aligned address (do_anonymous_page() -> alloc_anon_folio()
    takes the largest enabled order that fits).

The cases write and watch the first two subpages (cow.c writes the whole
range; the other pages go the same way and are not watched).  cow.c's
long-term R/O pin cases are left out: no user-space interface takes a
long-term R/O pin on this kernel (see :mod:`mmkit.live.holders`).

What is compared (:func:`compare_large`), per watched page and step
--------------------------------------------------------------------
outcome, present, anon, zero_page, per-page ``mapcount`` (kpagecount),
``order``, ``head``, ``pmd_mapped``, ``exclusive`` (PageAnonExclusive),
``writable`` (live: known only where this process stored to the page since
the last operation that can write-protect it, see :mod:`mmkit.live.kernel`),
and the folio's ``large_mapcount``, ``entire_mapcount`` and
``nr_pages_mapped`` (live: counted in the page tables of every worker and
checked against kpagecount, :func:`mmkit.live.thp.folio_census`),
plus page identity by relation (the same physical page as at the previous
step / as another watched page).  A field the live kernel reports as
``None`` is *not observable* there and counted as such, never compared:
``exclusive`` of a tail page (kpageflags bit 34 reads the head page's
flags) unless the AE probe measured it -- it cannot for a tail of a
PMD-mapped THP, whose own bit the kernel keeps clear and never consults
(mm/rmap.c: __folio_add_anon_rmap() sets it on the head only);
``folio_pincount``, ``maybe_mapped_shared``, ``mm_ids`` and ``refcount``
(not exported; model only).

AE of PTE-mapped tails: after the last step, and (``replay=True``) after
every earlier step on a replay of the scenario up to it on a fresh live
kernel, :meth:`mmkit.live.LiveKernel.probe_exclusive` measures the watched
tail pages whose ``exclusive`` is unknown (a store after mprotect R/O ->
R/W takes 0 faults only on a PageAnonExclusive page); such cells read
``AE?`` -> ``AE`` / ``--`` with a ``p`` mark.

khugepaged: the live runner reads khugepaged's global ``pages_collapsed``
before and after every step.  A step during which it moved is flagged; a
run that disagrees on such a step is repeated, and a disagreement that
persists names khugepaged beside the field.
"""

import dataclasses
from types import SimpleNamespace

from ..errors import KernelError, Signal
from ..scenario import Scenario, format_outcome

__all__ = ["RUNS", "COW_LARGE_CASES", "LARGE_TOPICS", "LARGE_SCENARIOS", "large_scenarios", "get_large",
           "model_supports_large", "run_large", "compare_large", "run_large_conformance", "LargeReport",
           "COMPARED", "NOT_OBSERVABLE"]

OLD, NEW = b"\x00old", b"\xffnew"
PAGE = 4096

#: fields compared where the live kernel can observe them
COMPARED = ("present", "anon", "zero_page", "mapcount", "exclusive", "writable", "order", "head", "pmd_mapped",
            "large_mapcount", "entire_mapcount", "nr_pages_mapped")
#: fields the live kernel cannot observe, with why (shown for the model only)
NOT_OBSERVABLE = {
    "refcount": "not exported to user space",
    "folio_pincount": "not exported; pins show only through their effects",
    "maybe_mapped_shared": "MM-ID state of struct folio, not exported (pagemap bit 56 is the per-page "
                           "mapcount with CONFIG_PAGE_MAPCOUNT=y)",
    "mm_ids": "MM-ID slots of struct folio, not exported",
}


# -- preparations (cow.c enum thp_run) --------------------------------------------------
def _thp(k, s):
    s.p = k.spawn("parent")
    k.thp.set("2048kB", "madvise")
    s.a = s.p.mmap(512)
    s.p.madvise(s.a, 512, "hugepage")
    s.p.write(s.a, OLD)
    s.p.write(s.a + PAGE, OLD)
    s.n = 512


def _pte(k, s):
    _thp(k, s)
    s.p.mprotect(s.a + PAGE, 1, "r")
    s.p.mprotect(s.a + PAGE, 1, "rw")
    s.p.madvise(s.a, 512, "nohugepage")


def _single_pte(k, s):
    _pte(k, s)
    s.p.madvise(s.a + PAGE, 511, "dontneed")
    s.n = 1


def _partial_mremap(k, s):
    _thp(k, s)
    s.r = s.p.mmap(256, "none")
    s.p.mremap(s.a + 256 * PAGE, 256, 256, maymove=True, fixed=s.r)
    s.n = 256


def _partial_shared(k, s):
    _thp(k, s)
    s.p.madvise(s.a + PAGE, 511, "dontfork")
    c = s.p.fork("early child")
    c.exit()
    s.p.madvise(s.a + PAGE, 511, "dofork")


def _mthp(size):
    def prep(k, s):
        s.p = k.spawn("parent")
        k.thp.set(size, "always")
        k.thp.set("2048kB", "never")
        s.a = s.p.mmap(512)
        s.p.write(s.a, OLD)
        s.p.write(s.a + PAGE, OLD)
        s.n = int(size[:-2]) // 4
    return prep


_mthp64 = _mthp("64kB")


#: name -> (explanation, preparation)
RUNS = {
    "pmd": ("a PMD-mapped 2 MiB THP", _thp),
    "pte": ("a PTE-mapped 2 MiB THP (PMD split by mprotect of one subpage)", _pte),
    "single_pte": ("a single PTE of a 2 MiB THP (MADV_DONTNEED of the other 511)", _single_pte),
    "partial_mremap": ("a 2 MiB THP whose upper half was mremap()ed away", _partial_mremap),
    "partial_shared": ("a 2 MiB THP whose first subpage was shared with a child that exited", _partial_shared),
    "mthp16": ("a 16 KiB mTHP (order 2)", _mthp("16kB")),
    "mthp64": ("a 64 KiB mTHP (order 4)", _mthp64),
    "mthp1024": ("a 1 MiB mTHP (order 8)", _mthp("1024kB")),
}


def _watch(run):
    if run == "single_pte":
        return [("parent0", "p", "a", 0), ("child0", "c", "a", 0)]
    if run == "partial_mremap":
        return [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("child0", "c", "a", 0), ("child1", "c", "a", 1),
                ("parentR0", "p", "r", 0), ("childR0", "c", "r", 0)]
    return [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("child0", "c", "a", 0), ("child1", "c", "a", 1)]


def _nw(s):
    return min(2, s.n)


def _write_new(proc):
    def fn(k, s):
        for i in range(_nw(s)):
            getattr(s, proc).write(s.a + i * PAGE, NEW)
    return fn


def _fork(k, s):
    s.c = s.p.fork("child")


def _mprotect_rw(k, s):
    s.p.mprotect(s.a, s.n, "r")
    s.p.mprotect(s.a, s.n, "rw")


FORK = ("fork", "fork(): parent and child share the folio.", _fork)
MPROTECT = ("mprotect R/O, R/W", "mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE) of the range.",
            _mprotect_rw)


def _check_child_old(k, s):
    return all(s.c.read(s.a + i * PAGE, len(OLD)) == OLD for i in range(_nw(s)))


def _pipe_old(k, s):
    return s.pipe.read(len(OLD)) == OLD


def _cases():
    """cow.c anon_test_cases[] (without the long-term R/O pins): name -> steps."""
    def vmsplice(proc):
        return lambda k, s: setattr(s, "pipe", getattr(s, proc).vmsplice(s.a, len(OLD)))
    out = {}
    for mp in (False, True):
        sfx = " with mprotect() optimization" if mp else ""
        out["Basic COW after fork()" + sfx] = [FORK] + ([MPROTECT] if mp else []) + [
            ("parent writes", "The parent modifies the pages.", _write_new("p")),
            ("check", "Pass if the child still reads the old data.", _check_child_old)]
        out["vmsplice() + unmap in child" + sfx] = [
            FORK,
            ("child vmsplices", "vmsplice() the first page into a pipe [R/O GUP, FOLL_GET].", vmsplice("c")),
            ("child unmaps", "munmap() of the whole range in the child.", lambda k, s: s.c.munmap(s.a, s.n))] + \
            ([MPROTECT] if mp else []) + [
            ("parent writes", "The parent modifies the pages.", _write_new("p")),
            ("check", "Pass if the pipe returns the old data.", _pipe_old)]
    for before in (True, False):
        splice = ("parent vmsplices", "vmsplice() the first page into a pipe [R/O GUP, FOLL_GET].", vmsplice("p"))
        name = ("vmsplice() before fork(), unmap in parent after fork()" if before else
                "vmsplice() + unmap in parent after fork()")
        out[name] = ([splice, FORK] if before else [FORK, splice]) + [
            ("parent unmaps", "munmap() of the whole range in the parent.", lambda k, s: s.p.munmap(s.a, s.n)),
            ("child writes", "The child modifies the pages.", _write_new("c")),
            ("check", "Pass if the pipe returns the old data.", _pipe_old)]
    for use_fork in (False, True):
        reg = ("register buffer", "io_uring fixed buffer over the watched pages: a long-term R/W pin.",
               lambda k, s: setattr(s, "pin", s.p.pin(s.a, _nw(s), write=True, longterm=True)))
        name = ("fork() with an iouring fixed buffer" if use_fork else
                "R/O-mapping a page registered as iouring fixed buffer")
        out[name] = [reg, FORK if use_fork else MPROTECT,
                     ("parent writes", "The parent modifies the pages.", _write_new("p")),
                     ("check", "Pass if the pin sees the new data.", lambda k, s: s.pin.read(len(NEW)) == NEW)]
    return out


def _make(name, title, prep_name, prep, steps, watch):
    sc = Scenario(name, title, watch=watch)
    sc.add("prepare", f"Prepare {prep_name}.", prep)
    for st in steps:
        sc.add(*st)
    return sc


#: cow.c's anonymous cases on each preparation: "cow.c[pmd]: Basic COW after fork()"...
COW_LARGE_CASES = [_make(f"cow.c[{run}]: {case}", f"{case} ... with {RUNS[run][0]}", RUNS[run][0], RUNS[run][1],
                         steps, _watch(run))
                   for run in RUNS for case, steps in _cases().items()]


# -- topic scenarios ------------------------------------------------------------------
def _topics():
    w3 = [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("parent2", "p", "a", 2),
          ("child0", "c", "a", 0), ("child1", "c", "a", 1), ("child2", "c", "a", 2)]
    w2 = [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("child0", "c", "a", 0), ("child1", "c", "a", 1)]
    out = []

    sc = _make("large_thp_cow", "fork, then COW of single subpages of a PMD-mapped THP", "a PMD THP", _thp, [
        FORK,
        ("child writes page 1", "do_huge_pmd_wp_page(): the child's PMD is split and page 1 copied.",
         lambda k, s: s.c.write(s.a + PAGE, NEW)),
        ("parent writes page 2", "The folio is still shared: the parent copies too (its PMD is split).",
         lambda k, s: s.p.write(s.a + 2 * PAGE, NEW)),
        ("child exits", "The child's mappings go away.", lambda k, s: s.c.exit()),
        ("parent writes page 1", "Exclusive to this mm again: a PTE-mapped large folio is reused (v6.15 MM IDs).",
         lambda k, s: s.p.write(s.a + PAGE, NEW))], w3)
    out.append(sc)

    sc = _make("large_thp_reuse_after_exit", "the child exits; the parent's write reuses the whole PMD",
               "a PMD THP", _thp, [
                   FORK,
                   ("child exits", "The child's PMD goes away.", lambda k, s: s.c.exit()),
                   ("parent writes", "Sole mapper: the PMD is reused (do_huge_pmd_wp_page()).",
                    lambda k, s: s.p.write(s.a, NEW))], w2)
    out.append(sc)

    sc = _make("large_thp_pinned_fork", "fork with one subpage of a THP pinned (io_uring)", "a PMD THP", _thp, [
        ("pin page 1", "io_uring fixed buffer on subpage 1.",
         lambda k, s: setattr(s, "pin", s.p.pin(s.a + PAGE, 1, write=True, longterm=True))),
        ("fork", "copy_huge_pmd(): a maybe-pinned folio is not shared: split, then copy for the child.", _fork),
        ("parent writes page 1", "The pinned page stays the parent's.", lambda k, s: s.p.write(s.a + PAGE, NEW)),
        ("pin reads", "The pin sees the parent's write.", lambda k, s: s.pin.read(len(NEW)) == NEW)], w2)
    out.append(sc)

    sc = _make("large_thp_unshare", "an R/O pin (O_DIRECT write) of a subpage of a shared THP", "a PMD THP",
               _thp, [
                   FORK,
                   ("parent R/O-pins page 1", "FOLL_PIN without FOLL_WRITE on a shared anon page: unshare.",
                    lambda k, s: s.p.pin(s.a + PAGE, 1, write=False, longterm=False) and None),
                   ("child writes page 1", "The child's copy of the data is its own.",
                    lambda k, s: s.c.write(s.a + PAGE, NEW)),
                   ("parent reads page 1", "The parent still reads the old data.",
                    lambda k, s: s.p.read(s.a + PAGE, len(OLD)))], w2)
    out.append(sc)

    wu = [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("parent300", "p", "a", 300),
          ("child0", "c", "a", 0), ("child1", "c", "a", 1)]
    sc = _make("large_thp_partial_unmap", "munmap of half a THP, MADV_DONTNEED of a subpage, then fork + COW",
               "a PMD THP", _thp, [
                   ("munmap upper half", "The PMD is split; the folio stays order 9 (deferred split).",
                    lambda k, s: s.p.munmap(s.a + 256 * PAGE, 256)),
                   ("dontneed page 1", "Zap one PTE of the lower half.",
                    lambda k, s: s.p.madvise(s.a + PAGE, 1, "dontneed")),
                   FORK,
                   ("child writes page 0", "PTE-mapped shared large folio: copy.",
                    lambda k, s: s.c.write(s.a, NEW)),
                   ("child reads page 1", "A hole: the zero page.",
                    lambda k, s: s.c.read(s.a + PAGE, 1))], wu)
    out.append(sc)

    sc = _make("large_thp_compaction_pinned", "compaction never moves a THP with a pinned subpage",
               "a PMD THP", _thp, [
                   ("pin page 1", "io_uring fixed buffer on subpage 1.",
                    lambda k, s: setattr(s, "pin", s.p.pin(s.a + PAGE, 1, write=True, longterm=True)) and None),
                   ("compaction", "isolate_migratepages_block() skips a folio with extra references.",
                    lambda k, s: k.migrate(s.p, s.a, 2, reason="compaction").migrated)],
               [("parent0", "p", "a", 0), ("parent1", "p", "a", 1)])
    out.append(sc)

    sc = _make("large_thp_split_zero_fill", "the deferred split of a partially unmapped THP; a page never "
               "written becomes the shared zero page", "a PMD THP", _thp, [
                   ("munmap upper half", "The folio is partially mapped: on the deferred split queue.",
                    lambda k, s: s.p.munmap(s.a + 256 * PAGE, 256)),
                   ("shrinker", "deferred_split_scan() splits it; since v6.12 (b1f202060afe) zero-filled "
                    "subpages are mapped to the shared zero page instead (try_to_map_unused_to_zeropage()).",
                    lambda k, s: k.shrink_deferred_split()[0] >= 1)],
               [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("parent2", "p", "a", 2)])
    out.append(sc)

    sc = _make("large_thp_partial_mremap_cow", "mremap() of half a THP, then fork + COW on both halves",
               "a PMD THP", _thp, [
                   ("mremap upper half", "mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of pages 256-511 onto a PROT_NONE "
                    "mapping: move_page_tables() splits the PMD (not a whole PMD) and move_ptes() moves 256 PTEs; "
                    "one order-9 folio, PTE-mapped in two VMAs, every counter and AE bit unchanged.",
                    lambda k, s: (setattr(s, "r", s.p.mmap(256, "none")),
                                  s.p.mremap(s.a + 256 * PAGE, 256, 256, maymove=True, fixed=s.r))[-1] == s.r),
                   FORK,
                   ("child writes page 0", "Maybe mapped shared: the child copies page 0.",
                    lambda k, s: s.c.write(s.a, NEW)),
                   ("parent writes moved page 0", "Still shared: the parent copies the moved page too.",
                    lambda k, s: s.p.write(s.r, NEW)),
                   ("child exits", "Only the parent maps the folio now.", lambda k, s: s.c.exit()),
                   ("parent writes moved page 1", "Exclusive to this mm, every reference a mapping: reused in "
                    "place (v6.15 MM IDs), whichever VMA maps the page.", lambda k, s: s.p.write(s.r + PAGE, NEW))],
               [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("parentR0", "p", "r", 0),
                ("parentR1", "p", "r", 1), ("child0", "c", "a", 0), ("childR0", "c", "r", 0)])
    out.append(sc)

    def move_whole(k, s):
        raw = s.p.mmap(1024, "none")
        s.r = (raw + 512 * PAGE) & ~(512 * PAGE - 1)
        return s.p.mremap(s.a, 512, 512, maymove=True, fixed=s.r) == s.r

    sc = _make("large_thp_mremap_pmd", "mremap() of a whole THP to a PMD-aligned address, then fork + COW",
               "a PMD THP", _thp, [
                   ("mremap the THP", "The whole PMD moves to a PMD-aligned target: move_huge_pmd() moves the "
                    "one entry; the THP stays PMD-mapped, counters and AE unchanged.", move_whole),
                   FORK,
                   ("child writes page 1", "do_huge_pmd_wp_page(): the child's PMD is split and page 1 copied.",
                    lambda k, s: s.c.write(s.r + PAGE, NEW)),
                   ("child exits", "Only the parent's PMD maps the THP.", lambda k, s: s.c.exit()),
                   ("parent writes page 0", "refcount 1: the parent's PMD is reused whole.",
                    lambda k, s: s.p.write(s.r, NEW))],
               [("parentR0", "p", "r", 0), ("parentR1", "p", "r", 1), ("childR0", "c", "r", 0),
                ("childR1", "c", "r", 1)])
    out.append(sc)

    sc = _make("large_mthp64_cow", "fork + COW of a 64 KiB mTHP", "a 64 KiB mTHP", _mthp64, [
        FORK,
        ("child writes page 1", "do_wp_page(): a shared large folio is never reused: copy 4 KiB.",
         lambda k, s: s.c.write(s.a + PAGE, NEW)),
        ("parent writes page 2", "Still shared: copy.", lambda k, s: s.p.write(s.a + 2 * PAGE, NEW)),
        ("child exits", "", lambda k, s: s.c.exit()),
        ("parent writes page 1", "Exclusive to this mm: reuse (v6.15 MM IDs).",
         lambda k, s: s.p.write(s.a + PAGE, NEW))], w3)
    out.append(sc)
    return out


LARGE_TOPICS = _topics()
LARGE_SCENARIOS = LARGE_TOPICS + COW_LARGE_CASES


def large_scenarios():
    """Every large-folio scenario: this module's, the large-folio topics of
    :mod:`mmkit.scenarios.topics` (``LARGE_TOPICS``: thp_fork_cow,
    mthp_fork_cow, thp_pin_fork, thp_partial_unmap), the huge zero folio's
    (:data:`mmkit.scenarios.huge_zero.HUGE_ZERO_SCENARIOS`), the model's own
    cow.c THP/mTHP variants (:mod:`mmkit.scenarios.thp_cow`, which map and
    fill the whole folio as cow.c does) and MADV_COLLAPSE / khugepaged's
    (:data:`mmkit.scenarios.collapse.COLLAPSE_SCENARIOS`), where those exist."""
    from . import topics
    from .huge_zero import HUGE_ZERO_SCENARIOS      # imported here: huge_zero imports this module
    out = LARGE_TOPICS + list(getattr(topics, "LARGE_TOPICS", {}).values()) + HUGE_ZERO_SCENARIOS
    try:
        from .thp_cow import MTHP_CASES, THP_CASES
    except ImportError:
        THP_CASES = MTHP_CASES = []
    try:
        from .collapse import COLLAPSE_SCENARIOS
    except ImportError:
        COLLAPSE_SCENARIOS = []
    return out + list(THP_CASES) + list(MTHP_CASES) + COW_LARGE_CASES + list(COLLAPSE_SCENARIOS)


def get_large(name):
    for sc in large_scenarios():
        if sc.name == name:
            return sc
    raise KeyError(name)


def model_supports_large():
    """(ok, reason): does the model have the large-folio API these scenarios use?"""
    from ..kernel import Kernel
    from ..pageinfo import PageInfo
    missing = []
    k = Kernel(era="6.18")
    if not hasattr(k, "thp"):
        missing.append("Kernel.thp (per-size THP policy)")
    have = {f.name for f in dataclasses.fields(PageInfo)}
    missing += [f"PageInfo.{n}" for n in ("order", "head", "pmd_mapped") if n not in have]
    if missing:
        return False, "the model has no large folios yet: missing " + ", ".join(missing)
    return True, "the model has large folios"


# -- running --------------------------------------------------------------------------
@dataclasses.dataclass
class LRow:
    step: str
    outcome: object
    cells: dict
    collapsed: int = 0


def _cell(info):
    d = {f: getattr(info, f, None) for f in COMPARED}
    d["pfn"] = info.pfn
    for f in NOT_OBSERVABLE:
        d[f] = getattr(info, f, None)
    d["probed"] = False
    return d


def _norm(o):
    if o is None or isinstance(o, (bool, int, float, str, bytes)):
        return o
    if isinstance(o, (list, tuple)):
        return tuple(_norm(x) for x in o)
    name = type(o).__name__
    return f"<{getattr(o, 'kind', None) or name.removeprefix('Live').lower()}>"


def run_large(sc, k, upto=None, probe=False):
    """Run ``sc`` (its first ``upto`` steps) on ``k``; returns (rows, unsupported).

    ``probe=True`` (live kernels) measures, after the last step, the AE bit
    of every watched page whose ``exclusive`` is unknown
    (:meth:`~mmkit.live.LiveKernel.probe_exclusive`)."""
    s = SimpleNamespace()
    rows, unsupported = [], None
    collapsed = getattr(k, "khugepaged_collapsed", None)
    for i, st in enumerate(sc.steps if upto is None else sc.steps[:upto]):
        c0 = collapsed() if collapsed else None
        try:
            out = st.fn(k, s)
        except Signal as e:
            out = e.signal
        except KernelError as e:
            out = e.errno
            if e.errno == "ENOSYS":
                unsupported = f"step {i + 1} {st.name!r}: {e}"
        except Exception as e:          # a step that broke: shown and compared, never silent
            out = f"error: {type(e).__name__}: {e}"
        c1 = collapsed() if collapsed else None
        cells = {}
        for label, t in sc.targets(k, s).items():
            cells[label] = _cell(k.page(*t)) if t else {"present": False, "pfn": None}
            if t:
                cells[label]["target"] = t
        rows.append(LRow(st.name, _norm(out), cells, (c1 - c0) if c0 is not None and c1 is not None else 0))
        if unsupported:
            break
    if probe and rows and hasattr(k, "probe_exclusive"):
        for c in rows[-1].cells.values():
            if c.get("present") and c.get("anon") and c.get("exclusive") is None and c["target"][0].alive:
                try:
                    c["exclusive"] = k.probe_exclusive(c["target"][0], c["target"][1], 1)[0]
                    c["probed"] = True
                except (Signal, KernelError):
                    pass
    return rows, unsupported


def _same_state(a, b):
    return all(a.get(f) == b.get(f) for f in COMPARED if f != "exclusive")


def _fill_ae_by_replay(sc, rows, live):
    """AE of tail pages of PTE-mapped folios at earlier steps: replay up to
    the step on a fresh live kernel, then probe there; taken only if the
    replay shows the page in the same visible state
    (:func:`mmkit.conformance.replay_and_probe`)."""
    from ..conformance import replay_and_probe

    def adopt(a, b):
        if _same_state(a, b) and b.get("exclusive") is not None:
            a["exclusive"], a["probed"] = b["exclusive"], True
    replay_and_probe(sc, rows, live, lambda sc, k, upto: run_large(sc, k, upto=upto, probe=True),
                     lambda c: c.get("present") and c.get("anon") and c.get("exclusive") is None, adopt)


def compare_large(model_rows, live_rows, names, counts=None):
    """Disagreements between a model run and a live run, as strings.
    ``counts`` (a dict) collects field -> [compared, not observable]."""
    fails = []
    counts = {} if counts is None else counts
    for i, (m, lv) in enumerate(zip(model_rows, live_rows)):
        where = f"step {i + 1} {m.step!r}"
        khd = f" (khugepaged collapsed {lv.collapsed} page(s) during this step)" if lv.collapsed else ""
        if m.outcome != lv.outcome:
            fails.append(f"{where} outcome: model {format_outcome(m.outcome)}, live {format_outcome(lv.outcome)}{khd}")
        for n in names:
            a, b = m.cells[n], lv.cells[n]
            for f in COMPARED:
                if f != "present" and not (a.get("present") and b.get("present")):
                    continue
                if f == "exclusive" and not (a.get("anon") and b.get("anon")):
                    continue
                va, vb = a.get(f), b.get(f)
                cnt = counts.setdefault(f, [0, 0])
                if vb is None and va is not None:
                    cnt[1] += 1
                    continue
                cnt[0] += 1
                if va != vb:
                    fails.append(f"{where} {n}.{f}: model {va}, live {vb}{khd}")
            if i:
                pa, pb = model_rows[i - 1].cells[n], live_rows[i - 1].cells[n]
                if all(c.get("present") for c in (a, b, pa, pb)):
                    sa, sb = a["pfn"] == pa["pfn"], b["pfn"] == pb["pfn"]
                    counts.setdefault("identity", [0, 0])[0] += 1
                    if sa != sb:
                        fails.append(f"{where} {n}.same_page_as_before: model {sa}, live {sb}{khd}")
        for j, n1 in enumerate(names):
            for n2 in names[j + 1:]:
                cs = (m.cells[n1], m.cells[n2], lv.cells[n1], lv.cells[n2])
                if all(c.get("present") for c in cs):
                    sa, sb = cs[0]["pfn"] == cs[1]["pfn"], cs[2]["pfn"] == cs[3]["pfn"]
                    counts.setdefault("identity", [0, 0])[0] += 1
                    if sa != sb:
                        fails.append(f"{where} {n1}.same_page_as_{n2}: model {sa}, live {sb}{khd}")
    return fails


def _text(c, model):
    if not c.get("present"):
        return "-"
    if c.get("zero_page"):
        return "zero page"
    order = c.get("order")
    level = {True: "PMD", False: "PTE", None: "?"}[c.get("pmd_mapped")]
    ae = c.get("exclusive")
    ae = "AE?" if ae is None else ("AE" if ae else "--") + ("p" if c.get("probed") else "")
    head = {True: "H", False: "T", None: "?"}[c.get("head")]
    w = {True: "W", False: "RO", None: "?"}[c.get("writable")]
    s = f"o{order if order is not None else '?'}{head if order else ''} {level} m{c.get('mapcount')} {ae} {w}"
    if c.get("large_mapcount") is not None:
        s += f" L{c['large_mapcount']} E{c['entire_mapcount']} N{c['nr_pages_mapped']}"
    return s


@dataclasses.dataclass
class LargeComparison:
    name: str
    model: list
    live: list
    names: list
    failures: list
    counts: dict
    unsupported: object = None
    attempts: int = 1

    @property
    def ok(self):
        return not self.failures

    def table(self):
        out = [f"{self.name} -- {'OK' if self.ok else 'FAILED'}"
               + (f" (live stopped: {self.unsupported})" if self.unsupported else "")]
        for i, (m, lv) in enumerate(zip(self.model, self.live)):
            out.append(f"  {i + 1}. {m.step}: model {format_outcome(m.outcome)} | live {format_outcome(lv.outcome)}"
                       + (f"  [khugepaged +{lv.collapsed}]" if lv.collapsed else ""))
            for n in self.names:
                out.append(f"      {n:10} model {_text(m.cells[n], True):34} live {_text(lv.cells[n], False)}")
        out += [f"  ! {f}" for f in self.failures]
        return "\n".join(out)


@dataclasses.dataclass
class LargeReport:
    comparisons: list

    @property
    def ok(self):
        return all(c.ok for c in self.comparisons)

    @property
    def failures(self):
        return [f"{c.name}: {f}" for c in self.comparisons for f in c.failures]

    def counts(self):
        """field -> [compared, not observable live], over every scenario."""
        tot = {}
        for c in self.comparisons:
            for f, (a, b) in c.counts.items():
                t = tot.setdefault(f, [0, 0])
                t[0] += a
                t[1] += b
        return tot

    def format(self):
        lines = [c.table() for c in self.comparisons]
        lines.append("L / E / N: the folio's large mapcount, entire mapcount, pages mapped by PTEs; "
                     "p: AE measured by the mprotect probe")
        lines.append("fields (compared / not observable live): " + ", ".join(
            f"{f} {a}/{b}" for f, (a, b) in sorted(self.counts().items())))
        lines.append("never observable live: " + "; ".join(f"{f} ({why})" for f, why in NOT_OBSERVABLE.items()))
        return "\n".join(lines)


def run_large_conformance(scenarios=None, model=None, live=None, retries=2, replay=True):
    """Run each large-folio scenario on the model (era 6.18) and live; compare.

    Parameters
    ----------
    model, live : callable
        Kernel factories (default ``Kernel(era="6.18")`` and ``LiveKernel``).
    replay : bool
        Measure AE of PTE-mapped tail pages at every step by replaying (slow);
        False measures it after the last step only.
    """
    from ..kernel import Kernel
    if model is None:
        def model():
            return Kernel(era="6.18")
    if live is None:
        from ..live import LiveKernel
        live = LiveKernel
    out = []
    for sc in scenarios if scenarios is not None else large_scenarios():
        names = [w[0] for w in sc.watch]
        mk = model()
        try:
            mrows, _ = run_large(sc, mk, probe=True)
        finally:
            getattr(mk, "close", lambda: None)()
        attempts = 0
        while True:
            attempts += 1
            k = live()
            try:
                lrows, unsupported = run_large(sc, k, probe=True)
            finally:
                getattr(k, "close", lambda: None)()
            if replay and hasattr(k, "probe_exclusive"):
                _fill_ae_by_replay(sc, lrows, live)
            counts = {}
            fails = compare_large(mrows[:len(lrows)], lrows, names, counts)
            if unsupported:
                fails = [f for f in fails if not f.startswith(f"step {len(lrows)} ")]
            if not fails or attempts > retries:
                break
        out.append(LargeComparison(sc.name, mrows[:len(lrows)], lrows, names, fails, counts, unsupported, attempts))
    return LargeReport(out)
