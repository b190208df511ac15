"""MADV_COLLAPSE and khugepaged (mmkit.khugepaged): what collapses, what is
refused and with which errno, what happens to the old pages, and the eras."""


import pytest

from mmkit import Kernel, KernelError, MMError
from mmkit import khugepaged
from mmkit.errors import InvalidArgument
from mmkit.khugepaged import MadvCollapseError
from test_bad_input import deadline   # noqa: E402  (tests/ is on sys.path: one SIGALRM deadline for both)

PAGE = 4096
NR = 512


def region(k, p, n=NR):
    """A 2 MiB-aligned range of n pages inside a mapping twice as large."""
    raw = p.mmap(2 * n)
    return (raw + n * PAGE - 1) & ~(n * PAGE - 1)


def small_pages(era="6.18", n_written=NR):
    """512 (or n_written) written 4 KiB pages: the THP policy is madvise and
    the VMA has no VM_HUGEPAGE, so every write fault takes a 4 KiB page."""
    k = Kernel(era=era)
    p = k.spawn("P")
    a = region(k, p)
    for i in range(n_written):
        p.write(a + i * PAGE, b"page %03d" % i)
    return k, p, a


def pfns(k, p, a, n=NR):
    return [k.page(p, a + i * PAGE).pfn for i in range(n)]


def test_collapse_makes_one_pmd_mapped_thp_of_copies():
    """512 small pages become one new order-9 folio mapped by a PMD: new pfns,
    the data copied, AE on the head, the 512 old pages freed."""
    k, p, a = small_pages()
    old = set(pfns(k, p, a))
    before = k.nr_folios
    p.madvise(a, NR, "collapse")
    head, tail = k.page(p, a), k.page(p, a + 300 * PAGE)
    assert head.order == 9 and head.pmd_mapped and head.head and head.exclusive and head.writable
    assert tail.pfn == head.pfn + 300 and not tail.head
    assert not old & set(pfns(k, p, a))
    assert p.read(a + 300 * PAGE, 8) == b"page 300"
    assert k.nr_folios == before - NR + 1
    assert head.refcount == 1 and head.entire_mapcount == 1 and head.large_mapcount == 1
    k.check_invariants()


def test_collapse_ignores_the_sysfs_policy():
    """MADV_COLLAPSE collapses with THP 'never' (TVA_FORCED_COLLAPSE)."""
    k, p, a = small_pages()
    k.thp.enabled = "never"
    p.madvise(a, NR, "collapse")
    assert k.page(p, a).pmd_mapped


def test_holes_and_zero_pages_become_zero_filled_subpages():
    """MADV_COLLAPSE ignores max_ptes_none: empty and zero-page PTEs become
    zeroed subpages of the new THP."""
    k, p, a = small_pages(n_written=3)
    p.read(a + 10 * PAGE, 1)
    assert k.page(p, a + 10 * PAGE).zero_page
    p.madvise(a, NR, "collapse")
    for i in (10, 400):
        info = k.page(p, a + i * PAGE)
        assert info.order == 9 and not info.zero_page
        assert p.read(a + i * PAGE, 4) == bytes(4)
    assert p.read(a + 2 * PAGE, 8) == b"page 002"


def test_vm_nohugepage_is_refused_with_einval_and_nothing_changes():
    """VM_NOHUGEPAGE: thp_vma_allowable_order() is false: EINVAL, state unchanged."""
    k, p, a = small_pages()
    p.madvise(a, NR, "nohugepage")
    d = k.dump()
    with pytest.raises(KernelError) as e:
        p.madvise(a, NR, "collapse")
    assert e.value.errno == "EINVAL" and k.dump() == d


def test_never_written_vma_is_refused():
    """No anon_vma yet (only zero-page reads): EINVAL."""
    k = Kernel()
    p = k.spawn("P")
    a = region(k, p)
    p.read(a, 1)
    with pytest.raises(KernelError, match="EINVAL"):
        p.madvise(a, NR, "collapse")
    assert k.page(p, a).zero_page


@pytest.mark.parametrize("hold", ["pin", "gup", "vmsplice"])
def test_an_extra_reference_refuses_with_eagain_and_nothing_changes(hold):
    """A pin, a GUP reference or a pipe buffer: folio_expected_ref_count() !=
    refcount (SCAN_PAGE_COUNT): EAGAIN, state unchanged."""
    k, p, a = small_pages()
    h = {"pin": lambda: p.pin(a + PAGE, 1, write=True), "gup": lambda: p.get_user_pages(a + PAGE, 1),
         "vmsplice": lambda: p.vmsplice(a + PAGE, 10)}[hold]()
    d = k.dump()
    with pytest.raises(KernelError) as e:
        p.madvise(a, NR, "collapse")
    assert e.value.errno == "EAGAIN" and e.value.results == [(a, "SCAN_PAGE_COUNT")]
    assert k.dump() == d
    if hold == "pin":
        h.unpin()
        p.madvise(a, NR, "collapse")
        assert k.page(p, a).pmd_mapped


def test_already_pmd_mapped_is_a_success_that_changes_nothing():
    """SCAN_PMD_MAPPED counts as collapsed: returns normally, same THP."""
    k, p, a = small_pages()
    p.madvise(a, NR, "collapse")
    pfn = k.page(p, a).pfn
    d = k.dump()
    p.madvise(a, NR, "collapse")
    assert k.page(p, a).pfn == pfn and k.dump() == d


def test_after_fork_the_parent_gets_an_exclusive_writable_thp_and_the_child_keeps_the_old_pages():
    """6.18: MADV_COLLAPSE ignores max_ptes_shared and read-only PTEs; the
    parent's copy is AE and PMD-writable, the child's pages are mapped once."""
    k, p, a = small_pages()
    c = p.fork("C")
    old = k.page(c, a).pfn
    p.madvise(a, NR, "collapse")
    pi, ci = k.page(p, a), k.page(c, a)
    assert pi.pmd_mapped and pi.exclusive and pi.writable
    assert ci.pfn == old and ci.mapcount == 1 and ci.refcount == 1 and not ci.exclusive
    assert c.read(a + PAGE, 8) == b"page 001"


def test_before_6_18_a_range_without_a_writable_pte_is_refused():
    """6.2: SCAN_PAGE_RO (no writable PTE after fork) -> EINVAL, unchanged."""
    k, p, a = small_pages(era="6.2")
    p.fork("C")
    d = k.dump()
    with pytest.raises(KernelError) as e:
        p.madvise(a, NR, "collapse")
    assert e.value.errno == "EINVAL" and e.value.results == [(a, "SCAN_PAGE_RO")] and k.dump() == d


def test_one_writable_pte_is_enough_before_6_18():
    """6.2: after fork, one parent write makes its PTE writable: collapse works."""
    k, p, a = small_pages(era="6.2")
    c = p.fork("C")
    c.exit()
    p.write(a, b"w")
    p.madvise(a, NR, "collapse")
    assert k.page(p, a).pmd_mapped


def test_a_pte_mapped_thp_is_copied_into_a_new_thp():
    """For anon memory the old folio is not re-mapped by a PMD
    (collapse_pte_mapped_thp() is file/shmem only): new pfns, the old folio
    freed, a zapped page zero-filled."""
    k = Kernel()
    p = k.spawn("P")
    a = region(k, p)
    p.madvise(a, NR, "hugepage")
    p.write(a + PAGE, b"one")
    p.madvise(a + 511 * PAGE, 1, "dontneed")
    old = k.page(p, a)
    assert old.order == 9 and not old.pmd_mapped and old.large_mapcount == 511
    assert len(k.deferred_split) == 1
    before = k.nr_folios
    p.madvise(a, NR, "collapse")
    new = k.page(p, a)
    assert new.pmd_mapped and new.pfn != old.pfn and k.nr_folios == before
    assert p.read(a + PAGE, 3) == b"one" and p.read(a + 511 * PAGE, 1) == b"\0"
    assert k.deferred_split == []


def test_mthps_are_collapsed_into_one_thp():
    """Sixteen PTE-mapped 64 KiB mTHPs become one 2 MiB THP."""
    k = Kernel()
    k.thp.set("64kB", "always")
    k.thp.set("2048kB", "never")
    p = k.spawn("P")
    a = region(k, p)
    p.write(a, b"x" * (NR * PAGE))
    assert k.page(p, a).order == 4
    p.madvise(a, NR, "collapse")
    assert k.page(p, a).order == 9 and k.page(p, a).pmd_mapped
    k.check_invariants()


@pytest.mark.parametrize("era", ["5.7", "5.8", "5.9", "5.19"])
def test_eras_before_6_1_have_no_madv_collapse(era):
    """madvise_behavior_valid() rejects advice 25 before v6.1: EINVAL, unchanged."""
    k, p, a = small_pages(era=era)
    d = k.dump()
    with pytest.raises(KernelError, match="EINVAL"):
        p.madvise(a, NR, "collapse")
    assert k.dump() == d


def test_rounding_of_the_range():
    """Only PMD-aligned 2 MiB inside the range is collapsed: a range that
    rounds to nothing returns 0, one past a PMD start gives EINVAL."""
    k, p, a = small_pages()
    d = k.dump()
    p.madvise(a, 1, "collapse")
    assert k.dump() == d
    with pytest.raises(KernelError, match="EINVAL"):
        p.madvise(a + PAGE, 1, "collapse")
    assert k.dump() == d


def test_a_later_failure_keeps_the_earlier_collapse():
    """Two PMD ranges, the second pinned: the first is collapsed and the call
    fails with EAGAIN (the kernel's own convention for MADV_COLLAPSE)."""
    k = Kernel()
    p = k.spawn("P")
    raw = p.mmap(3 * NR)
    a = (raw + NR * PAGE - 1) & ~(NR * PAGE - 1)
    p.write(a, b"y" * (2 * NR * PAGE))
    p.pin(a + NR * PAGE, 1, write=True)
    with pytest.raises(MadvCollapseError) as e:
        p.madvise(a, 2 * NR, "collapse")
    assert e.value.errno == "EAGAIN"
    assert e.value.results == [(a, "SCAN_SUCCEED"), (a + NR * PAGE, "SCAN_PAGE_COUNT")]
    assert k.page(p, a).pmd_mapped and not k.page(p, a + NR * PAGE).pmd_mapped


def test_a_hole_is_enomem_and_changes_nothing():
    """A range with a hole: ENOMEM before anything changes (model convention)."""
    k, p, a = small_pages()
    p.munmap(a + 10 * PAGE, 1)
    d = k.dump()
    with pytest.raises(KernelError, match="ENOMEM"):
        p.madvise(a, NR, "collapse")
    assert k.dump() == d


def test_file_and_shared_mappings_are_not_modelled():
    """collapse_file() is not modelled: InvalidArgument, nothing changes."""
    k = Kernel()
    p = k.spawn("P")
    f = k.open("f", npages=NR)
    m = p.mmap(NR, file=f)
    s = p.mmap(NR, shared=True)
    p.read(m, 1)
    d = k.dump()
    for addr in (m, s):
        with pytest.raises(InvalidArgument, match="not modelled"):
            p.madvise(addr, NR, "collapse")
    assert k.dump() == d


def test_snapshot_restore_across_a_collapse():
    """restore() brings the 512 small pages back after a collapse."""
    k, p, a = small_pages()
    snap = k.snapshot()
    before = pfns(k, p, a)
    p.madvise(a, NR, "collapse")
    k.restore(snap)
    assert pfns(k, p, a) == before and k.page(p, a).order == 0
    k.check_invariants()


def test_dontneed_splits_no_vma():
    """MADV_DONTNEED changes no VMA flag: the VMA stays whole, so a later
    MADV_COLLAPSE of the PTE-mapped THP still sees a 2 MiB VMA."""
    k = Kernel()
    p = k.spawn("P")
    a = region(k, p)
    n = len(k.tasks[p.pid].mm.vmas)
    p.madvise(a + 5 * PAGE, 1, "dontneed")
    assert len(k.tasks[p.pid].mm.vmas) == n


# -- bad input -------------------------------------------------------------------------

BAD = [10**9, 2**36, 10**30, -1, -(2**64), 0, 1.5, float("inf"), float("nan"), True, False, None, "1", b"x"]




@pytest.mark.parametrize("pos", [0, 1])
@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_bad_arguments_raise_quickly_and_change_nothing(pos, bad):
    """madvise(collapse) with a bad address or length: returns or raises an
    MMError within a second; a raise leaves the state unchanged."""
    k, p, a = small_pages(n_written=4)
    args = [a, NR]
    args[pos] = bad
    d = k.dump()
    with deadline(1):
        try:
            p.madvise(*args, "collapse")
        except MMError:
            assert k.dump() == d


# -- khugepaged --------------------------------------------------------------------------

def hugepage_range(era="6.18", n_written=NR):
    k, p, a = small_pages(era=era, n_written=n_written)
    p.madvise(a, NR, "hugepage")
    return k, p, a


def test_khugepaged_collapses_a_vm_hugepage_range():
    """With the policy 'madvise', a VM_HUGEPAGE range of small pages is collapsed."""
    k, p, a = hugepage_range()
    r = khugepaged.scan(k)
    assert r.pages_collapsed == 1 and (p.name, a, "SCAN_SUCCEED") in r
    assert k.page(p, a).pmd_mapped and p.read(a + 7 * PAGE, 8) == b"page 007"


def test_khugepaged_skips_vmas_the_policy_does_not_allow():
    """No MADV_HUGEPAGE in 'madvise' mode: khugepaged does not look."""
    k, p, a = small_pages()
    assert khugepaged.scan(k).pages_collapsed == 0 and not k.page(p, a).pmd_mapped


def test_khugepaged_obeys_max_ptes_none():
    """Three pages written: 509 empty PTEs are within 511, not within 0."""
    k, p, a = hugepage_range(n_written=3)
    d = k.dump()
    r = khugepaged.scan(k, max_ptes_none=0)
    assert (p.name, a, "SCAN_EXCEED_NONE_PTE") in r and k.dump() == d
    assert khugepaged.scan(k).pages_collapsed == 1


def test_khugepaged_obeys_max_ptes_shared_which_madv_collapse_ignores():
    """300 pages shared with a child exceed max_ptes_shared (256), not 511."""
    k, p, a = hugepage_range(n_written=300)
    p.fork("C")
    r = khugepaged.scan(k)
    assert (p.name, a, "SCAN_EXCEED_SHARED_PTE") in r and not k.page(p, a).pmd_mapped
    assert khugepaged.scan(k, max_ptes_shared=511).pages_collapsed >= 1


def test_khugepaged_refuses_a_pinned_range():
    k, p, a = hugepage_range()
    p.pin(a, 1, write=True)
    assert (p.name, a, "SCAN_PAGE_COUNT") in khugepaged.scan(k)


def test_khugepaged_5_7_refuses_shared_and_compound_pages():
    """v5.7: page_count() must be 1 and a compound page is refused."""
    k, p, a = hugepage_range(era="5.7")
    c = p.fork("C")
    assert (p.name, a, "SCAN_PAGE_COUNT") in khugepaged.scan(k, max_ptes_shared=511)
    c.exit()
    k2 = Kernel(era="5.7")
    q = k2.spawn("Q")
    b = region(k2, q)
    q.madvise(b, NR, "hugepage")
    q.write(b, b"t")
    q.madvise(b + 511 * PAGE, 1, "dontneed")
    assert (q.name, b, "SCAN_PAGE_COMPOUND") in khugepaged.scan(k2)


@pytest.mark.parametrize("bad", [-1, 512, 1.5, None, True, "1"])
def test_khugepaged_limits_are_checked(bad):
    """A limit outside 0..511 is refused as max_ptes_none_store() does."""
    k, p, a = hugepage_range()
    d = k.dump()
    with pytest.raises(InvalidArgument):
        khugepaged.scan(k, max_ptes_none=bad)
    assert k.dump() == d


def test_an_empty_pmd_slot_stops_the_walk():
    """written / never touched / written: the first range is collapsed, the
    empty one (SCAN_PMD_NONE) ends the loop with EINVAL, the third stays 4 KiB
    (checked on the live 6.18 kernel: scenario collapse_stops_at_empty_pmd)."""
    k = Kernel()
    p = k.spawn("P")
    raw = p.mmap(4 * NR)
    a = (raw + NR * PAGE - 1) & ~(NR * PAGE - 1)
    p.write(a, b"1" * (NR * PAGE))
    p.write(a + 2 * NR * PAGE, b"3" * (NR * PAGE))
    with pytest.raises(MadvCollapseError) as e:
        p.madvise(a, 3 * NR, "collapse")
    assert e.value.errno == "EINVAL"
    assert e.value.results == [(a, "SCAN_SUCCEED"), (a + NR * PAGE, "SCAN_PMD_NONE")]
    assert k.page(p, a).pmd_mapped and k.page(p, a + 2 * NR * PAGE).order == 0


def test_a_vma_without_an_aligned_2mib_is_refused():
    """512 pages straddling a PMD boundary hold no aligned 2 MiB:
    thp_vma_allowable_order() is false: EINVAL (not 0), as on the live kernel."""
    k = Kernel()
    p = k.spawn("P")
    m = p.mmap(2048)
    lo = ((m + NR * PAGE - 1) & ~(NR * PAGE - 1)) + 100 * PAGE
    p.munmap(m, (lo - m) // PAGE)
    p.munmap(lo + NR * PAGE, (m + 2048 * PAGE - lo) // PAGE - NR)
    p.write(lo, b"u" * (NR * PAGE))
    with pytest.raises(KernelError, match="EINVAL"):
        p.madvise(lo, NR, "collapse")


def test_khugepaged_collapses_when_shared_pages_are_within_max_ptes_shared():
    """200 pages shared with a child (<= 256): collapsed; the child's pages
    are then mapped once (seen on the live 6.18 kernel too)."""
    k, p, a = small_pages()
    c = p.fork("C")
    c.munmap(a + 200 * PAGE, NR - 200)
    p.madvise(a, NR, "hugepage")
    assert khugepaged.scan(k).pages_collapsed == 1
    assert k.page(p, a).pmd_mapped and k.page(c, a).mapcount == 1


def test_the_huge_zero_page():
    """A huge-zero PMD is SCAN_PMD_MAPPED (0, unchanged); once split into
    zero-page PTEs MADV_COLLAPSE allocates a THP of zeros, which khugepaged
    refuses (512 zero or empty PTEs > max_ptes_none 511).  Live 6.18 agrees
    (scenario collapse_huge_zero_page)."""
    k = Kernel()
    p = k.spawn("P")
    a = region(k, p)
    p.madvise(a, NR, "hugepage")
    p.read(a, 1)
    assert k.page(p, a).zero_page and k.page(p, a).pmd_mapped
    d = k.dump()
    p.madvise(a, NR, "collapse")
    assert k.dump() == d
    p.madvise(a + 511 * PAGE, 1, "dontneed")
    assert k.page(p, a).zero_page and not k.page(p, a).pmd_mapped
    assert (p.name, a, "SCAN_EXCEED_NONE_PTE") in khugepaged.scan(k)
    p.madvise(a, NR, "collapse")
    info = k.page(p, a)
    assert info.pmd_mapped and not info.zero_page and info.exclusive and p.read(a + 511 * PAGE, 2) == bytes(2)
