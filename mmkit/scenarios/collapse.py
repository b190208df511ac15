"""Collapse scenarios: MADV_COLLAPSE turns 4 KiB pages (or a PTE-mapped THP)
into a new PMD-mapped THP, or refuses; run on the model (era 6.18) and the
live kernel by the large-folio runner (:func:`run_collapse_conformance`,
which is :func:`mmkit.scenarios.cow_large.run_large_conformance` on
:data:`COLLAPSE_SCENARIOS`).

Every scenario maps twice 2 MiB and works on the 2 MiB-aligned half inside
(the live kernel places a mapping only 4 KiB aligned), and writes its pages
with the top-level THP policy left at ``madvise``: with no MADV_HUGEPAGE
the write faults allocate 4 KiB pages, and khugepaged, which in
``madvise`` mode scans only VM_HUGEPAGE VMAs, never touches the range.
MADV_COLLAPSE ignores that policy (TVA_FORCED_COLLAPSE).  Only
``collapse_pte_mapped_thp`` uses MADV_HUGEPAGE (to get its THP); the
runner flags a step during which khugepaged collapsed anything.

The rules these scenarios show are in :mod:`mmkit.khugepaged`.
"""

from ..scenario import Scenario

__all__ = ["COLLAPSE_SCENARIOS", "get_collapse", "run_collapse_conformance"]

PAGE = 4096
NR = 512


def _data(i):
    return b"page %03d" % i


def _region(k, s):
    s.p = k.spawn("parent")
    raw = s.p.mmap(2 * NR)
    s.a = (raw + NR * PAGE - 1) & ~(NR * PAGE - 1)


def _small_pages(k, s):
    """512 written 4 KiB pages in a 2 MiB-aligned range (no MADV_HUGEPAGE)."""
    _region(k, s)
    s.p.write(s.a, b"".join(_data(i).ljust(PAGE, b"\0") for i in range(NR)))


def _collapse(proc="p"):
    def fn(k, s):
        getattr(s, proc).madvise(s.a, NR, "collapse")
        return 0
    return fn


def _reads(proc, pages):
    def fn(k, s):
        return all(getattr(s, proc).read(s.a + i * PAGE, 8) == _data(i) for i in pages)
    return fn


def _sc(name, title, prep_title, prep, steps, watch):
    sc = Scenario(name, title, watch=watch)
    sc.add("prepare", prep_title, prep)
    for st in steps:
        sc.add(*st)
    return sc


_W3 = [("parent0", "p", "a", 0), ("parent1", "p", "a", 1), ("parent511", "p", "a", 511)]


def _scenarios():
    out = []
    out.append(_sc("collapse_small_pages", "MADV_COLLAPSE of 512 written 4 KiB pages",
                   "512 written 4 KiB pages, 2 MiB aligned (THP policy madvise, no MADV_HUGEPAGE).",
                   _small_pages, [
                       ("MADV_COLLAPSE", "madvise_collapse() -> hpage_collapse_scan_pmd() -> collapse_huge_page(): "
                        "a new order-9 folio, every page copied into it, one PMD, AE on the head; the sysfs "
                        "policy is ignored (TVA_FORCED_COLLAPSE).", _collapse()),
                       ("read back", "Every page still reads its own data (it was copied).",
                        _reads("p", (0, 1, 300, 511))),
                       ("MADV_COLLAPSE again", "Already PMD-mapped: SCAN_PMD_MAPPED counts as a success, "
                        "nothing changes.", _collapse()),
                       ("write page 1", "The PMD is writable and the folio exclusive: no fault, no copy.",
                        lambda k, s: s.p.write(s.a + PAGE, b"new"))], _W3))

    out.append(_sc("collapse_refused_nohugepage", "MADV_COLLAPSE refuses a VM_NOHUGEPAGE VMA and a never-written one",
                   "512 written 4 KiB pages, 2 MiB aligned.", _small_pages, [
                       ("MADV_NOHUGEPAGE", "VM_NOHUGEPAGE on the range.",
                        lambda k, s: s.p.madvise(s.a, NR, "nohugepage")),
                       ("MADV_COLLAPSE", "thp_vma_allowable_order(TVA_FORCED_COLLAPSE) is false under "
                        "VM_NOHUGEPAGE (vma_thp_disabled()): EINVAL, nothing changes.", _collapse()),
                       ("map and read another 2 MiB", "A read fault maps the zero page and creates no anon_vma.",
                        lambda k, s: (setattr(s, "b", (s.p.mmap(2 * NR) + NR * PAGE - 1) & ~(NR * PAGE - 1)),
                                      s.p.read(s.b, 1))[-1]),
                       ("MADV_COLLAPSE there", "No anon_vma yet: __thp_vma_allowable_orders() allows a THP there "
                        "only at a fault: EINVAL.",
                        lambda k, s: s.p.madvise(s.b, NR, "collapse") or 0)],
                   _W3 + [("other0", "p", "b", 0)]))

    def pin(k, s):
        s.pin = s.p.pin(s.a + PAGE, 1, write=True, longterm=True)

    out.append(_sc("collapse_pinned", "MADV_COLLAPSE refuses a range with a pinned page (EAGAIN), then collapses "
                   "it once unpinned", "512 written 4 KiB pages, 2 MiB aligned.", _small_pages, [
                       ("pin page 1", "io_uring fixed buffer on page 1: a long-term R/W pin.", pin),
                       ("MADV_COLLAPSE", "folio_expected_ref_count() != folio_ref_count() (SCAN_PAGE_COUNT): "
                        "EAGAIN, nothing changes.", _collapse()),
                       ("unpin", "Unregister the buffer.", lambda k, s: s.pin.unpin()),
                       ("MADV_COLLAPSE again", "Every reference is a mapping now: collapsed.", _collapse())], _W3))

    def fork(k, s):
        s.c = s.p.fork("child")

    out.append(_sc("collapse_after_fork", "MADV_COLLAPSE in a parent whose pages a child shares",
                   "512 written 4 KiB pages, 2 MiB aligned.", _small_pages, [
                       ("fork", "The child shares every page; the parent's PTEs are write-protected.", fork),
                       ("parent MADV_COLLAPSE", "MADV_COLLAPSE ignores max_ptes_shared; each page's references "
                        "are its two mappings, so the parent's range is copied into a new exclusive THP mapped "
                        "writable.  Before v6.18 a range with no writable PTE was refused (SCAN_PAGE_RO: EINVAL).",
                        _collapse()),
                       ("child reads", "The child keeps the old pages, now mapped once.",
                        _reads("c", (0, 1, 511))),
                       ("parent writes page 1", "Writable PMD of an exclusive folio: no copy.",
                        lambda k, s: s.p.write(s.a + PAGE, b"new"))],
                   _W3 + [("child0", "c", "a", 0), ("child1", "c", "a", 1)]))

    def thp(k, s):
        _region(k, s)
        s.p.madvise(s.a, NR, "hugepage")
        s.p.write(s.a, _data(0))
        s.p.write(s.a + PAGE, _data(1))

    out.append(_sc("collapse_pte_mapped_thp", "MADV_COLLAPSE of a PTE-mapped THP: copied into a new THP",
                   "a PMD-mapped THP (MADV_HUGEPAGE, one write fault), pages 0 and 1 written.", thp, [
                       ("dontneed page 511", "Zap the last page: the PMD is split, 511 PTEs map the order-9 "
                        "folio.", lambda k, s: s.p.madvise(s.a + 511 * PAGE, 1, "dontneed")),
                       ("MADV_COLLAPSE", "For an anon range 6.18 does not re-map the old folio by a PMD "
                        "(collapse_pte_mapped_thp() is for file/shmem): every page is copied into a new THP, "
                        "the hole zero-filled, the old folio freed.", _collapse()),
                       ("read back", "The data moved with the pages.", _reads("p", (0, 1)))], _W3))

    def huge_zero(k, s):
        _region(k, s)
        s.p.madvise(s.a, NR, "hugepage")
        return s.p.read(s.a, 1)

    out.append(_sc("collapse_huge_zero_page", "MADV_COLLAPSE of a range the huge zero page maps",
                   "MADV_HUGEPAGE and a read fault: the huge zero folio mapped by a read-only PMD "
                   "(do_huge_pmd_anonymous_page(), which prepares the anon_vma first).", huge_zero, [
                       ("MADV_COLLAPSE", "pmd_trans_huge(): SCAN_PMD_MAPPED, which MADV_COLLAPSE counts as done: "
                        "0, and the huge zero page stays.", _collapse()),
                       ("dontneed page 511", "A partial zap splits the huge zero PMD: 511 PTEs of the 4 KiB zero "
                        "page (__split_huge_zero_page_pmd()), one empty.",
                        lambda k, s: s.p.madvise(s.a + 511 * PAGE, 1, "dontneed")),
                       ("MADV_COLLAPSE again", "Zero-page and empty PTEs count only against max_ptes_none, which "
                        "MADV_COLLAPSE ignores: a new THP of zeros is allocated, exclusive (khugepaged would refuse: "
                        "512 > 511).", _collapse())], _W3))

    def three(k, s):
        s.p = k.spawn("parent")
        raw = s.p.mmap(4 * NR)
        s.a = (raw + NR * PAGE - 1) & ~(NR * PAGE - 1)
        s.b, s.c3 = s.a + NR * PAGE, s.a + 2 * NR * PAGE
        fill = b"".join(_data(i).ljust(PAGE, b"\0") for i in range(NR))
        s.p.write(s.a, fill)
        s.p.write(s.c3, fill)

    out.append(_sc("collapse_stops_at_empty_pmd", "MADV_COLLAPSE of three 2 MiB ranges: written, never touched, "
                   "written", "three 2 MiB-aligned ranges; the first and the third written, the middle one never "
                   "touched (no page table).", three, [
                       ("MADV_COLLAPSE of all three", "The first range is collapsed; the middle one has no page "
                        "table (SCAN_PMD_NONE), which is not on madvise_collapse()'s list of results to go on "
                        "after: it stops there and returns EINVAL; the third range stays 4 KiB pages.  "
                        "MADV_COLLAPSE keeps what it did before a failure.",
                        lambda k, s: s.p.madvise(s.a, 3 * NR, "collapse") or 0)],
                   [("first0", "p", "a", 0), ("first1", "p", "a", 1), ("middle0", "p", "b", 0),
                    ("third0", "p", "c3", 0)]))
    return out


#: The collapse scenarios, for :func:`mmkit.scenarios.cow_large.run_large_conformance`.
COLLAPSE_SCENARIOS = _scenarios()


def get_collapse(name):
    """The collapse scenario called ``name`` (KeyError if none)."""
    for sc in COLLAPSE_SCENARIOS:
        if sc.name == name:
            return sc
    raise KeyError(name)


def run_collapse_conformance(names=None, **kw):
    """Run the collapse scenarios (all, or those in ``names``) on the model
    and the live kernel; returns a :class:`~mmkit.scenarios.cow_large.LargeReport`."""
    from .cow_large import run_large_conformance
    scs = COLLAPSE_SCENARIOS if names is None else [get_collapse(n) for n in names]
    return run_large_conformance(scs, **kw)
