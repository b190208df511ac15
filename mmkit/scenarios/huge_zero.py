"""The huge zero folio, step by step, on the model and on the live kernel.

A read fault in an anonymous range where a PMD may be mapped (THP allowed
for the VMA, the aligned 2 MiB inside it, no page table there yet) maps the
**huge zero folio** by one read-only PMD when
``/sys/kernel/mm/transparent_hugepage/use_zero_page`` is 1, the default
(mm/huge_memory.c: do_huge_pmd_anonymous_page() -> mm_get_huge_zero_folio(),
set_huge_zero_folio()).  Like the 4 KiB zero page it is not counted: no
rmap, no mapcount (kpagecount 0), no reference per mapping.  On the live
kernel its pages read ``ZERO_PAGE THP COMPOUND_HEAD/TAIL`` in kpageflags
and PAGEMAP_SCAN reports the PMD (PAGE_IS_HUGE).

:data:`HUGE_ZERO_SCENARIOS` is a list of :class:`~mmkit.scenario.Scenario`
in the form the large-folio runner takes
(:func:`mmkit.scenarios.cow_large.run_large_conformance`, which compares
order, head, PMD mapping, zero_page, mapcount... per watched page)::

    from mmkit.scenarios.cow_large import run_large_conformance
    from mmkit.scenarios.huge_zero import HUGE_ZERO_SCENARIOS
    print(run_large_conformance(HUGE_ZERO_SCENARIOS).format())

Each scenario starts from a 2 MiB-aligned anonymous mapping with
MADV_HUGEPAGE and hugepages-2048kB ``madvise``, nothing touched yet.  Where
a scenario leaves the range PTE-mapped and then writes one page, it first
sets MADV_NOHUGEPAGE so that khugepaged cannot collapse the range (511 zero
PTEs and one page are within max_ptes_none) while the scenario runs.
"""

from .cow_large import PAGE, _make

__all__ = ["HUGE_ZERO_SCENARIOS", "get_huge_zero"]

NEW = b"new data"


def _region(k, s):
    """A 2 MiB anonymous mapping, MADV_HUGEPAGE.  It is 2 MiB-aligned: the
    first mapping of a new model process starts at the 2 MiB-aligned
    mmap_base in every era, and v6.8+ (the live kernel) aligns an anonymous
    mapping whose length is a multiple of PMD_SIZE
    (thp_get_unmapped_area_vmflags())."""
    s.p = k.spawn("parent")
    if getattr(k.thp, "mthp", True):    # a per-size directory (v6.8+; the model's older eras have none)
        k.thp.set("2048kB", "madvise")
    s.a = s.p.mmap(512)
    s.p.madvise(s.a, 512, "hugepage")


def _no_zero_page(k, s):
    _region(k, s)
    k.thp.write("use_zero_page", "0")


def _read(proc, page):
    return lambda k, s: getattr(s, proc).read(s.a + page * PAGE, 4)


def _write(proc, page):
    return lambda k, s: getattr(s, proc).write(s.a + page * PAGE, NEW)


def _nohugepage(k, s):
    s.p.madvise(s.a, 512, "nohugepage")


_NOHUGE = ("MADV_NOHUGEPAGE", "VM_NOHUGEPAGE: khugepaged leaves the PTE-mapped range alone (no fault changes).",
           _nohugepage)


def _scenarios():
    p3 = [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("parent300", "p", "a", 300)]
    pc = [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("child0", "c", "a", 0), ("child1", "c", "a", 1)]
    out = []

    out.append(_make("huge_zero_read_write", "a read maps the huge zero folio by one PMD; a write replaces it",
                     "an untouched 2 MiB THP-eligible range", _region, [
                         ("read page 1", "do_huge_pmd_anonymous_page(): a read fault on an empty PMD with "
                          "use_zero_page 1 maps the huge zero folio read-only by one PMD: every page of the "
                          "2 MiB reads zeros, nothing is counted.", _read("p", 1)),
                         ("write page 1", "do_huge_pmd_wp_page() -> do_huge_zero_wp_pmd() (v6.13): a zeroed "
                          "THP replaces the whole PMD, writable; before v6.13 the PMD was split and only page 1 "
                          "got a page.", _write("p", 1))], p3))

    def fork(k, s):
        s.c = s.p.fork("child")

    out.append(_make("huge_zero_fork", "fork copies a huge zero PMD without counters; each writer gets its own",
                     "an untouched 2 MiB THP-eligible range", _region, [
                         ("read page 0", "The huge zero folio, by one PMD.", _read("p", 0)),
                         ("fork", "copy_huge_pmd(): is_huge_zero_pmd(): the child gets the same special PMD "
                          "(mm_get_huge_zero_folio() for its mm, nothing per mapping).", fork),
                         ("child writes page 1", "The child's PMD is replaced by its own THP (v6.13); the parent "
                          "keeps the huge zero folio.", _write("c", 1)),
                         ("child exits", "The child's THP goes away.", lambda k, s: s.c.exit()),
                         ("parent writes page 0", "The parent gets a THP too.", _write("p", 0))], pc))

    out.append(_make("huge_zero_partial_munmap", "munmap of half a huge zero PMD maps zero-page PTEs",
                     "an untouched 2 MiB THP-eligible range", _region, [
                         ("read page 0", "The huge zero folio, by one PMD.", _read("p", 0)),
                         ("munmap upper half", "__split_huge_pmd() -> __split_huge_zero_page_pmd(): 512 "
                          "read-only PTEs of the 4 KiB zero page, then the upper 256 are zapped.",
                          lambda k, s: s.p.munmap(s.a + 256 * PAGE, 256)),
                         ("write page 1", "A PTE table is there now: do_wp_page() on the zero page, one new "
                          "4 KiB page (the VMA is too small for a THP).", _write("p", 1))], p3))

    out.append(_make("huge_zero_dontneed", "MADV_DONTNEED of a whole huge zero PMD and of one of its pages",
                     "an untouched 2 MiB THP-eligible range", _region, [
                         ("read page 0", "The huge zero folio, by one PMD.", _read("p", 0)),
                         ("MADV_DONTNEED 2 MiB", "zap_huge_pmd(): the PMD is cleared, nothing to uncount.",
                          lambda k, s: s.p.madvise(s.a, 512, "dontneed")),
                         ("read page 300", "pmd_none again: the huge zero folio again.", _read("p", 300)),
                         ("MADV_DONTNEED page 1", "Part of the PMD: split into zero-page PTEs, then page 1's "
                          "PTE is zapped.", lambda k, s: s.p.madvise(s.a + PAGE, 1, "dontneed")),
                         ("read page 1", "A PTE table is there now: the 4 KiB zero page.", _read("p", 1))], p3))

    out.append(_make("huge_zero_mprotect", "mprotect of one page splits a huge zero PMD; a write gets 4 KiB",
                     "an untouched 2 MiB THP-eligible range", _region, [
                         ("read page 0", "The huge zero folio, by one PMD.", _read("p", 0)),
                         ("mprotect page 1 R, then R/W", "The VMA split crosses the PMD: split_huge_pmd() "
                          "maps zero-page PTEs, which mprotect() never makes writable.",
                          lambda k, s: (s.p.mprotect(s.a + PAGE, 1, "r"), s.p.mprotect(s.a + PAGE, 1, "rw"))
                          and None),
                         _NOHUGE,
                         ("write page 1", "do_wp_page() on a zero-page PTE: one new 4 KiB page.",
                          _write("p", 1))], p3))

    out.append(_make("huge_zero_use_zero_page_0", "with use_zero_page 0 a read fault allocates a THP",
                     "an untouched 2 MiB THP-eligible range, use_zero_page 0", _no_zero_page, [
                         ("read page 1", "do_huge_pmd_anonymous_page(): !transparent_hugepage_use_zero_page(): "
                          "__do_huge_pmd_anonymous_page() allocates a THP, mapped writable and dirty "
                          "(map_anon_folio_pmd()), AE on the head.", _read("p", 1)),
                         ("write page 1", "Already writable: no fault.", _write("p", 1))], p3))

    out.append(_make("huge_zero_collapse", "MADV_COLLAPSE of a huge zero PMD is a success that changes nothing",
                     "an untouched 2 MiB THP-eligible range", _region, [
                         ("read page 0", "The huge zero folio, by one PMD; the read fault prepared the anon_vma "
                          "(vmf_anon_prepare()).", _read("p", 0)),
                         ("MADV_COLLAPSE", "hpage_collapse_scan_pmd() -> check_pmd_state(): pmd_trans_huge(): "
                          "SCAN_PMD_MAPPED, which madvise_collapse() counts as done: 0, nothing changes.",
                          lambda k, s: s.p.madvise(s.a, 512, "collapse")),
                         ("write page 0", "The write fault still replaces the huge zero PMD by a THP (v6.13).",
                          _write("p", 0))], p3))

    def ro_pin(k, s):
        s.ro = s.p.pin(s.a + PAGE, 1, write=False, longterm=False)

    def rw_pin(k, s):
        s.rw = s.p.pin(s.a + 2 * PAGE, 1, write=True, longterm=True)

    out.append(_make("huge_zero_pin", "an R/O pin leaves the huge zero folio mapped; a writable pin replaces it",
                     "an untouched 2 MiB THP-eligible range", _region, [
                         ("read page 0", "The huge zero folio, by one PMD.", _read("p", 0)),
                         ("R/O pin page 1 (O_DIRECT write)", "follow_huge_pmd(): gup_must_unshare() is false "
                          "for a non-anon page without FOLL_LONGTERM: the huge zero folio itself is pinned "
                          "(is_zero_folio() is the 4 KiB zero page only), the mapping stays.", ro_pin),
                         ("writable pin page 2 (io_uring)", "FOLL_WRITE on a read-only PMD: a write fault first "
                          "(do_huge_zero_wp_pmd(), v6.13), then the new THP is pinned.", rw_pin)],
                     [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("parent2", "p", "a", 2)]))
    return out


#: The scenarios, for :func:`mmkit.scenarios.cow_large.run_large_conformance`.
HUGE_ZERO_SCENARIOS = _scenarios()


def get_huge_zero(name):
    """The scenario called ``name``."""
    for sc in HUGE_ZERO_SCENARIOS:
        if sc.name == name:
            return sc
    raise KeyError(name)
