"""Large folios (PMD THP and mTHP) in the model: creation, counters, fork,
COW, pins, splitting, migration, and the eras where the kernel differed."""

import pytest

from mmkit import Kernel
from mmkit.errors import InvalidArgument, InvariantViolation, KernelError
from mmkit.invariants import LargeMapcountMismatch, MmIdSlotMismatch, PincountMismatch
from mmkit.scenarios import get
from mmkit.scenarios.cow_selftest import run_case
from mmkit.scenarios.thp_cow import MTHP_CASES, THP_CASES, thp_cases

P = 4096


def thp(era="6.18", pages=512, **kw):
    k = Kernel(era=era, **kw)
    p = k.spawn("P")
    a = p.mmap(pages)
    p.madvise(a, pages, "hugepage")
    p.write(a, b"x" * pages * P)
    return k, p, a


# -- policy -------------------------------------------------------------------------

def test_thp_sysfs_defaults_are_a_stock_kernels():
    """k.thp starts as this machine: enabled=madvise, 2048kB inherit, every other size never."""
    k = Kernel()
    assert k.thp.enabled == "madvise"
    assert k.thp.sizes == ("16kB", "32kB", "64kB", "128kB", "256kB", "512kB", "1024kB", "2048kB")
    assert k.thp.get("2048kB") == "inherit"
    assert all(k.thp.get(s) == "never" for s in k.thp.sizes[:-1])


def test_thp_set_rejects_bad_sizes_and_values_without_change():
    """A bad size or value raises InvalidArgument and changes nothing."""
    k = Kernel()
    for size, value in (("4kB", "always"), ("64kB", "sometimes"), (64, "always"), ("64kB", None)):
        with pytest.raises(InvalidArgument):
            k.thp.set(size, value)
    with pytest.raises(InvalidArgument):
        k.thp.enabled = "yes"
    assert k.thp.state() == Kernel().thp.state()


def test_before_v6_8_only_the_pmd_size_exists():
    """Eras before mTHP (v6.8) have only hugepages-2048kB, following the top level."""
    k = Kernel(era="6.2")
    assert k.thp.sizes == ("2048kB",)
    with pytest.raises(InvalidArgument):
        k.thp.set("64kB", "always")


def test_madvise_mode_needs_madv_hugepage():
    """With enabled=madvise a write fault maps a 4 KiB page unless the range has MADV_HUGEPAGE."""
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(512)
    p.write(a, b"x")
    assert k.page(p, a).order == 0
    b = p.mmap(512)
    p.madvise(b, 512, "hugepage")
    p.write(b, b"x")
    assert k.page(p, b).order == 9 and k.page(p, b).pmd_mapped


def test_always_mode_and_nohugepage():
    """enabled=always gives THPs without madvise; MADV_NOHUGEPAGE refuses them."""
    k = Kernel()
    k.thp.enabled = "always"
    p = k.spawn("P")
    a = p.mmap(512)
    b = p.mmap(512)
    p.madvise(b, 512, "nohugepage")
    p.write(a, b"x")
    p.write(b, b"x")
    assert k.page(p, a).order == 9
    assert k.page(p, b).order == 0


def test_anon_mmap_of_a_pmd_multiple_is_pmd_aligned_since_v6_12():
    """A private anon mmap whose length is a multiple of 2 MiB starts on a 2 MiB boundary in 6.18, not in 6.2."""
    for era, aligned in (("6.18", True), ("6.2", False)):
        k = Kernel(era=era)
        p = k.spawn("P")
        p.mmap(1)
        a = p.mmap(512)
        assert (a % (2 << 20) == 0) == aligned
        assert p.mmap(513) % (2 << 20) != 0 or era == "6.2"


def test_read_fault_maps_the_huge_zero_folio():
    """A read fault in a THP range maps the huge zero folio by one read-only PMD (do_huge_pmd_anonymous_page(),
    use_zero_page 1): the zero page, order 9, not counted (tests/test_huge_zero_page.py has the rest)."""
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(512)
    p.madvise(a, 512, "hugepage")
    p.read(a, 1)
    i = k.page(p, a)
    assert i.zero_page and i.order == 9 and i.pmd_mapped and i.mapcount == 0 and not i.writable


# -- counters -----------------------------------------------------------------------

def test_pmd_thp_counters_after_first_touch():
    """A new PMD THP: refcount 1, entire and large mapcount 1, kpagecount 1 per page, AE on the head only."""
    k, p, a = thp()
    head, tail = k.page(p, a), k.page(p, a + 5 * P)
    assert head.head and not tail.head
    assert head.pfn % 512 == 0 and tail.pfn == head.pfn + 5
    assert (tail.order, tail.nr_pages, tail.refcount, tail.large_mapcount, tail.entire_mapcount) == (9, 512, 1, 1, 1)
    assert tail.mapcount == 1 and tail.nr_pages_mapped == 0
    assert head.exclusive and not tail.exclusive
    assert tail.folio_pincount == 0 and tail.maybe_mapped_shared is False and tail.mm_ids == (1, 0)


def test_mthp_fault_picks_the_highest_order_with_empty_ptes():
    """alloc_anon_folio() picks the highest enabled order whose aligned PTEs are all empty."""
    k = Kernel()
    k.thp.set("64kB", "always")
    k.thp.set("16kB", "always")
    p = k.spawn("P")
    a = p.mmap(32)
    p.write(a + 20 * P, b"x")                  # the 64 KiB folio of pages 16..31
    info = k.page(p, a + 20 * P)
    assert (info.order, info.refcount, info.large_mapcount, info.nr_pages_mapped) == (4, 16, 16, 16)
    assert k.page(p, a + 16 * P).head and k.page(p, a + 15 * P).pfn is None
    assert all(k.page(p, a + i * P).exclusive for i in range(16, 32))
    k2 = Kernel()
    k2.thp.set("64kB", "always")
    k2.thp.set("16kB", "always")
    q = k2.spawn("Q")
    d = q.mmap(16)
    q.read(d + 8 * P, 1)                      # a zero-page PTE inside the 64 KiB range
    q.write(d, b"w")
    assert k2.page(q, d).order == 2           # 16 KiB: the 64 KiB range is not empty
    k.check_invariants()
    k2.check_invariants()


def test_small_vma_falls_back_to_small_pages():
    """A VMA smaller than the allowed size gets 4 KiB pages."""
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(8)
    p.madvise(a, 8, "hugepage")
    p.write(a, b"x")
    assert k.page(p, a).order == 0


def test_no_page_mapcount_option():
    """CONFIG_NO_PAGE_MAPCOUNT exists since v6.15: kpagecount shows the folio's average, _nr_pages_mapped is not kept."""
    with pytest.raises(InvalidArgument):
        Kernel(era="6.2", page_mapcount=False)
    k, p, a = thp(page_mapcount=False)
    c = p.fork("C")
    c.write(a, b"c")
    info = k.page(p, a + 7 * P)
    assert info.nr_pages_mapped is None
    # 1 PMD + 511 PTEs: average (511 + 256) >> 9 = 1, plus the entire mapcount 1
    assert info.large_mapcount == 512 and info.mapcount == 2
    assert Kernel(page_mapcount=True) and k.check_invariants()


# -- fork and COW (live-kernel.md, scenario 3 "PMD THP") ---------------------------------

def test_fork_shares_the_pmd():
    """copy_huge_pmd() shares a THP: refcount 2, entire mapcount 2, both PMDs read-only, head AE cleared."""
    k, p, a = thp()
    c = p.fork("C")
    for proc in (p, c):
        info = k.page(proc, a + 9 * P)
        assert info.pmd_mapped and not info.writable
        assert (info.refcount, info.entire_mapcount, info.mapcount) == (2, 2, 2)
        assert info.maybe_mapped_shared and info.mm_ids == (1, 2)
    assert not k.page(p, a).exclusive
    k.check_invariants()


def test_child_cow_splits_its_pmd_and_copies_one_page():
    """A write on a shared PMD splits the writer's PMD and copies only the 4 KiB page written."""
    k, p, a = thp()
    c = p.fork("C")
    c.write(a + 3 * P, b"child")
    kc, jc = k.page(c, a + 3 * P), k.page(c, a + 4 * P)
    assert kc.order == 0 and kc.exclusive and kc.writable
    assert jc.order == 9 and not jc.pmd_mapped and jc.mapcount == 2
    kp = k.page(p, a + 3 * P)
    assert kp.pmd_mapped and kp.mapcount == 1 and kp.refcount == 512
    assert p.read(a + 3 * P, 5) == b"xxxxx"
    k.check_invariants()


def test_reuse_of_a_pte_mapped_thp_via_mm_ids_in_6_18():
    """After the child exits, a write to a PTE-mapped THP reuses the page (v6.15 MM-ID reuse), AE on that page only."""
    k, p, a = thp()
    c = p.fork("C")
    c.write(a + 3 * P, b"c")
    p.write(a + 4 * P, b"p")                      # shared folio: the parent copies J
    assert k.page(p, a + 4 * P).order == 0
    c.exit()
    before = k.page(p, a + 3 * P)
    assert not before.maybe_mapped_shared and before.refcount == before.large_mapcount == 511
    p.write(a + 3 * P, b"P")
    after = k.page(p, a + 3 * P)
    assert after.pfn == before.pfn and after.exclusive and after.writable
    assert not k.page(p, a + 5 * P).exclusive
    assert any(e.func == "__wp_can_reuse_large_anon_folio" for e in k.trace)
    k.check_invariants()


@pytest.mark.parametrize("era,reused", [("5.8", True), ("5.9", False), ("6.2", False), ("6.18", True)])
def test_pte_mapped_thp_reuse_by_era(era, reused):
    """A PTE-mapped THP left to one process: reused by 5.8's mapcount rule and 6.15's MM IDs, copied in between."""
    k, p, a = thp(era)
    c = p.fork("C")
    c.write(a + 3 * P, b"c")
    p.write(a + 4 * P, b"p")
    c.exit()
    pfn = k.page(p, a + 3 * P).pfn
    p.write(a + 3 * P, b"P")
    assert (k.page(p, a + 3 * P).pfn == pfn) == reused
    k.check_invariants()


def test_refcount_era_reuses_the_last_mapped_page():
    """From v5.9 until a 2024 patch a page of a large folio is reused when it is the folio's only mapping (refcount 1); 6.18 copies it."""
    for era, reused in (("6.2", True), ("6.18", False)):
        k, p, a = thp(era)
        p.munmap(a + P, 511)
        c = p.fork("C")
        c.exit()
        pfn = k.page(p, a).pfn
        p.write(a, b"y")
        assert (k.page(p, a).pfn == pfn) == reused


def test_exclusive_pmd_is_reused_whole():
    """After the child exits, a write to the read-only PMD reuses the whole THP (refcount 1)."""
    k, p, a = thp()
    c = p.fork("C")
    c.exit()
    pfn = k.page(p, a).pfn
    p.write(a + 9 * P, b"z")
    info = k.page(p, a + 9 * P)
    assert info.pmd_mapped and info.writable and info.pfn == pfn + 9 and k.page(p, a).exclusive


def test_v5_7_copies_the_whole_thp():
    """Before 3917c80280c9 (v5.8) a COW fault on a shared THP copied all 512 pages into a new THP."""
    k, p, a = thp("5.7")
    c = p.fork("C")
    old = k.page(p, a).pfn
    c.write(a + 3 * P, b"c")
    info = k.page(c, a + 3 * P)
    assert info.pmd_mapped and info.order == 9 and info.pfn - 3 != old
    assert c.read(a + 4 * P, 2) == b"xx" and p.read(a + 3 * P, 1) == b"x"
    k.check_invariants()


def test_mthp_fork_and_cow():
    """A 64 KiB mTHP is shared per PTE at fork and reused via MM IDs once the child exits."""
    k = Kernel()
    rs = get("mthp_fork_cow").run(k)
    fork = rs[1].pages["parent J"]
    assert (fork.order, fork.refcount, fork.large_mapcount, fork.mapcount) == (4, 32, 32, 2)
    last = rs[-1].pages["parent J"]
    assert last.pfn == fork.pfn and last.exclusive
    k.check_invariants()


# -- pins ------------------------------------------------------------------------------

def test_pin_on_a_large_folio_adds_one_and_pincount():
    """FOLL_PIN on a large folio adds 1 to the refcount and 1 to _pincount, not 1024."""
    k, p, a = thp()
    pin = p.pin(a + 2 * P, 1, write=True)
    info = k.page(p, a)
    assert (info.refcount, info.folio_pincount, info.maybe_pinned) == (2, 1, True)
    pin.unpin()
    assert k.page(p, a).refcount == 1 and k.page(p, a).folio_pincount == 0
    k.check_invariants()


def test_pinned_thp_fork_copies_all_512_pages():
    """fork of a THP with one pinned page splits the parent's PMD and copies every page for the child."""
    k = Kernel()
    rs = get("thp_pin_fork").run(k)
    after = rs[2].pages
    assert not after["parent J"].pmd_mapped and after["parent J"].order == 9
    assert after["child J"].order == 0 and after["child K"].order == 0
    assert rs[-1].outcome is True
    c = [p for p in k.processes if p.name == "child"][0]
    a = rs[0].pages["parent head"]
    assert all(k.page(c, 0x7f0000000000 + i * P).order == 0 for i in range(512))
    k.check_invariants()


def test_ro_pin_on_shared_thp_unshares_one_page():
    """A R/O pin of a shared PMD THP page splits the PMD and copies that page read-only (unshare)."""
    k, p, a = thp()
    c = p.fork("C")
    pin = p.pin(a + 6 * P, 1, write=False)
    info = k.page(p, a + 6 * P)
    assert info.order == 0 and info.exclusive and not info.writable and info.pincount == 1
    assert k.page(p, a + 7 * P).order == 9 and not k.page(p, a + 7 * P).pmd_mapped
    assert k.page(c, a + 6 * P).pmd_mapped
    p.write(a + 6 * P, b"new")
    assert pin.read(3) == b"new"
    k.check_invariants()


# -- splitting ------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["munmap", "dontneed", "mprotect"])
def test_partial_operations_split_the_pmd(how):
    """Partial munmap, MADV_DONTNEED and mprotect turn a PMD THP into a PTE-mapped one, pfns unchanged."""
    k, p, a = thp()
    pfn = k.page(p, a + 300 * P).pfn
    if how == "munmap":
        p.munmap(a + 100 * P, 10)
    elif how == "dontneed":
        p.madvise(a + 100 * P, 10, "dontneed")
    else:
        p.mprotect(a + 100 * P, 10, "r")
    info = k.page(p, a + 300 * P)
    assert not info.pmd_mapped and info.order == 9 and info.pfn == pfn
    assert len(k.deferred_split) == (0 if how == "mprotect" else 1)
    assert info.nr_pages_mapped == (512 if how == "mprotect" else 502)
    k.check_invariants()


def test_deferred_split_shrinker_frees_unmapped_pages():
    """The deferred split shrinker splits a partially mapped folio, frees its unmapped pages and (6.18) maps
    the never-written ones to the zero page; a write there allocates a fresh page."""
    k = Kernel()
    rs = get("thp_partial_unmap").run(k)
    assert rs[2].outcome == "page 100: the zero page"
    head, page3, page100 = (rs[2].pages[w] for w in ("head", "page 3", "page 100"))
    assert head.order == 0 and head.pfn == rs[0].pages["head"].pfn and head.refcount == 1
    assert page3.pfn == rs[0].pages["page 3"].pfn and page100.zero_page and not rs[2].pages["last"].present
    assert rs[3].pages["page 100"].anon and rs[3].pages["page 100"].exclusive and k.nr_folios == 3
    assert not k.deferred_split
    k.check_invariants()


def _half_written_thp(era):
    """A THP whose pages 0 and 2 hold data, page 1 was written with zeros only, the rest never written;
    its upper half unmapped: on the deferred split queue."""
    k = Kernel(era=era)
    p = k.spawn("P")
    a = p.mmap(512)
    p.madvise(a, 512, "hugepage")
    p.write(a, b"data")
    p.write(a + P, bytes(64))
    p.write(a + 2 * P, b"more")
    p.munmap(a + 256 * P, 256)
    return k, p, a


def test_split_maps_zero_filled_subpages_to_the_zero_page_since_6_12():
    """6.18: split_folio() remaps every mapped subpage holding only zeros to the shared zero page
    (try_to_map_unused_to_zeropage(), b1f202060afe): by content, so a page written with zeros goes too;
    only the pages holding data stay, and the next write to a zero-page PTE allocates a fresh page."""
    k, p, a = _half_written_thp("6.18")
    assert k.shrink_deferred_split() == (1, 0)
    assert [k.page(p, a + i * P).zero_page for i in range(4)] == [False, True, False, True]
    assert k.page(p, a + 255 * P).zero_page and k.nr_folios == 2
    events = [e for e in k.trace if e.func == "try_to_map_unused_to_zeropage"]
    assert events and "254 PTE(s)" in events[-1].decision
    zero = k.page(p, a + P)
    assert not zero.writable and zero.mapcount == 0
    p.write(a + P, b"x")
    assert k.page(p, a + P).anon and k.page(p, a + P).pfn not in (zero.pfn,)
    k.check_invariants()


@pytest.mark.parametrize("era", ["5.9", "6.2"])
def test_split_keeps_zero_filled_subpages_before_6_12(era):
    """Before v6.12 the split kept every mapped subpage as a 4 KiB anon page (era rule split_remaps_zero)."""
    k, p, a = _half_written_thp(era)
    assert k.shrink_deferred_split() == (1, 0)
    assert not any(k.page(p, a + i * P).zero_page for i in range(256))
    assert k.nr_folios == 256
    k.check_invariants()


def test_split_remaps_a_shared_zero_filled_subpage_in_every_process():
    """A zero-filled subpage mapped by parent and child is remapped in both and freed."""
    k, p, a = _half_written_thp("6.18")
    c = p.fork("C")
    assert k.shrink_deferred_split() == (1, 0)
    assert k.page(c, a + 3 * P).zero_page and k.page(p, a + 3 * P).zero_page
    assert k.page(c, a).mapcount == 2 and k.nr_folios == 2
    k.check_invariants()


def test_pte_unmap_while_a_pmd_maps_the_folio_does_not_queue_it():
    """__folio_remove_rmap(): a page counts as unmapped only while no PMD maps the folio (_nr_pages_mapped
    below ENTIRELY_MAPPED), so the child's COW copy of one page leaves the parent's PMD-mapped THP off the
    deferred split queue; the child's exit, once the parent maps it by PTEs too, queues it."""
    k, p, a = thp()
    c = p.fork("C")
    c.write(a + 3 * P, b"child")
    assert not k.deferred_split
    p.write(a + 4 * P, b"parent")
    assert not k.deferred_split
    c.exit()
    assert len(k.deferred_split) == 1
    k.check_invariants()


def test_fork_copy_of_a_pinned_large_folio_names_its_pincount():
    """copy_present_page()'s trace for a page of a pinned large folio gives _pincount, not the 1024 bias."""
    k, p, a = thp()
    p.pin(a + 4 * P, 1, write=True)
    p.fork("C")
    reasons = [e.reason for e in k.trace if e.func == "copy_present_page"]
    assert reasons and all("_pincount 1 > 0" in r and "1024" not in r for r in reasons)


def test_pinned_folio_is_not_split():
    """split_folio() refuses a folio with a reference that is not a mapping (-EAGAIN): it stays queued."""
    k, p, a = thp()
    pin = p.pin(a, 1, write=True)
    p.munmap(a + 256 * P, 256)
    assert k.shrink_deferred_split() == (0, 1)
    pin.unpin()
    assert k.shrink_deferred_split() == (1, 0)
    k.check_invariants()


# -- migration ------------------------------------------------------------------------

def test_migration_moves_a_thp_whole_and_keeps_it_pmd_mapped():
    """move_pages(MOVE_ALL) moves a THP into a new THP, still PMD-mapped in every process."""
    k, p, a = thp()
    c = p.fork("C")
    old = k.page(p, a).pfn
    res = k.migrate(p, a, 512)
    assert res.migrated == 512 and res.failed == 0
    for proc in (p, c):
        info = k.page(proc, a)
        assert info.pmd_mapped and info.pfn != old and info.refcount == 2
    assert c.read(a, 2) == b"xx"
    k.check_invariants()


def test_pinned_thp_migration_fails_with_eagain():
    """A THP with a pin is not migrated: -EAGAIN for every page asked about."""
    k, p, a = thp()
    pin = p.pin(a, 1, write=True)
    res = k.migrate(p, a, 4)
    assert res.migrated == 0 and res.failed == 4
    assert all(r.startswith("EAGAIN") for r in res.reasons.values())
    pin.unpin()


def test_move_pages_without_move_all_refuses_a_shared_thp():
    """move_pages(2) without MPOL_MF_MOVE_ALL refuses a folio that is maybe mapped shared (-EACCES)."""
    k, p, a = thp()
    p.fork("C")
    res = k.migrate(p, a, 1, reason="move_pages")
    assert res.failed == 1 and res.reasons[a].startswith("EACCES")


# -- invariants, traces, snapshots ------------------------------------------------------

def test_invariants_catch_a_wrong_large_mapcount():
    """check_invariants() recounts large mapcounts and MM-ID slots from the page tables."""
    k, p, a = thp()
    f = p.mm.pmd(a).folio
    f.large_mapcount += 1
    with pytest.raises(InvariantViolation):
        k.check_invariants()
    f.large_mapcount -= 1
    f.mm_id_mapcount[0] += 1
    with pytest.raises(MmIdSlotMismatch):
        k.check_invariants()
    f.mm_id_mapcount[0] -= 1
    p.munmap(a + P, 1)
    p.mprotect(a + 2 * P, 510, "r")         # read-only PTEs: the recount itself must notice
    f.pages[2].pte_mapcount += 1
    with pytest.raises(LargeMapcountMismatch):
        k.check_invariants()
    f.pages[2].pte_mapcount -= 1
    f.pincount += 1
    f.refcount += 1
    with pytest.raises(PincountMismatch):
        k.check_invariants()


def test_traces_name_the_eras_functions():
    """The reuse test is traced as __wp_can_reuse_large_anon_folio in 6.18 and inside do_wp_page in 6.2."""
    for era, name in (("6.18", "__wp_can_reuse_large_anon_folio"), ("6.2", "do_wp_page")):
        k, p, a = thp(era)
        c = p.fork("C")
        c.write(a, b"c")
        funcs = {e.func for e in k.trace}
        assert "do_huge_pmd_wp_page" in funcs and "__split_huge_pmd" in funcs and name in funcs


def test_snapshot_restores_large_folios():
    """A snapshot taken before a COW brings the PMD mapping and the counters back."""
    k, p, a = thp()
    c = p.fork("C")
    snap = k.snapshot()
    c.write(a, b"c")
    k.restore(snap)
    assert k.page(c, a).pmd_mapped and k.page(c, a).refcount == 2
    k.check_invariants()


def test_madvise_hugepage_on_a_hole_fails_without_change():
    """MADV_HUGEPAGE over a hole fails with ENOMEM and sets nothing."""
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(4)
    with pytest.raises(KernelError):
        p.madvise(a, 8, "hugepage")
    assert not p.mm.find_vma(a).hugepage


# -- cow.c on large folios ------------------------------------------------------------

@pytest.mark.parametrize("case", THP_CASES + MTHP_CASES, ids=lambda c: c.name)
def test_cow_selftest_passes_on_large_folios_in_6_18(case):
    """Every cow.c anonymous case passes on PMD, PTE-mapped, single-PTE, partially shared THPs and a 64 kB mTHP."""
    k = Kernel()
    assert case.run(k)[-1].outcome is True
    k.check_invariants()


def test_cow_selftest_vmsplice_on_pmd_thp_fails_until_do_huge_pmd_wp_page_checks_the_refcount():
    """In 5.9 a PMD THP reused by reuse_swap_page() (mapcount) leaks the parent's write into a vmsplice'd pipe."""
    case = thp_cases("pmd")[2]
    assert case.name.startswith("vmsplice() + unmap in child")
    assert run_case(case, "5.9") is False and run_case(case, "5.19") is True
    small = get("vmsplice() + unmap in child")
    assert run_case(small, "5.9") is True
