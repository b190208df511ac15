"""mremap(): shrink, grow in place, move; a moved page keeps its counters and its rmap (mmkit.mremap)."""

import random

import pytest

from mmkit import InvalidArgument, Kernel, KernelError, MMError

PAGE = 4096
PMD = 2 << 20


def proc(era="6.18"):
    k = Kernel(era=era)
    return k, k.spawn("P")


def state(k):
    return k.dump() + repr([(v.start, v.end, v.prot, v.pgoff) for t in k.tasks.values() if t.alive
                            for v in t.mm.vmas])


def thp(k, p, order=9):
    """cow.c's preparation: mmap twice the size, align inside, MADV_HUGEPAGE, fill."""
    nr = 1 << order
    if order != 9:
        k.thp.set(f"{nr * 4}kB", "always")
        k.thp.set("2048kB", "never")
    raw = p.mmap(2 * nr)
    a = (raw + nr * PAGE) & ~(nr * PAGE - 1)
    p.madvise(a, nr, "hugepage")
    p.write(a, b"\x01" * (nr * PAGE))
    return a


def test_shrink_unmaps_the_tail():
    """Shrinking keeps the address and unmaps the pages past the new end."""
    k, p = proc()
    a = p.mmap(4)
    p.write(a, b"x" * 4 * PAGE)
    assert p.mremap(a, 4, 2) == a
    assert [(v.start, v.end) for v in p.mm.vmas] == [(a, a + 2 * PAGE)]
    assert k.page(p, a + 2 * PAGE).present is False
    assert p.read(a + PAGE, 1) == b"x"
    k.check_invariants()


def test_same_size_without_fixed_changes_nothing():
    """mremap to the same length returns the address and does nothing (MREMAP_NO_RESIZE)."""
    k, p = proc()
    a = p.mmap(4)
    before = state(k)
    assert p.mremap(a, 4, 4) == a
    assert state(k) == before


def test_grow_in_place_when_the_space_after_is_free():
    """A VMA with free space after it grows in place; the new pages fault in as usual."""
    k, p = proc()
    a = p.mmap(4)
    p.write(a, b"x")
    assert p.mremap(a, 4, 64) == a
    assert [(v.start, v.end) for v in p.mm.vmas] == [(a, a + 64 * PAGE)]
    p.write(a + 63 * PAGE, b"y")
    b = p.mmap(1)
    assert b >= a + 64 * PAGE                    # later mappings stay clear of the grown VMA
    k.check_invariants()


def test_grow_without_maymove_when_blocked_is_enomem_and_changes_nothing():
    """A VMA followed closely by another cannot grow in place; without MREMAP_MAYMOVE it is ENOMEM."""
    k, p = proc()
    a = p.mmap(4)
    p.mmap(4)
    before = state(k)
    with pytest.raises(KernelError) as e:
        p.mremap(a, 4, 16)
    assert e.value.errno == "ENOMEM"
    assert state(k) == before


def test_grow_with_maymove_moves_the_pages_and_keeps_the_data():
    """With MREMAP_MAYMOVE a blocked VMA moves: same pages (pfns), same data, old range gone."""
    k, p = proc()
    a = p.mmap(4)
    p.mmap(4)
    p.write(a, b"A" * 4 * PAGE)
    pfns = [k.page(p, a + i * PAGE).pfn for i in range(4)]
    b = p.mremap(a, 4, 16, maymove=True)
    assert b != a and p.mm.find_vma(a) is None
    assert [k.page(p, b + i * PAGE).pfn for i in range(4)] == pfns
    assert p.read(b + 3 * PAGE, 1) == b"A"
    k.check_invariants()


def test_a_move_keeps_every_counter_and_anon_exclusive():
    """Moving shared and exclusive pages leaves refcount, mapcount, AE and writability as they were."""
    k, p = proc()
    a = p.mmap(4)
    p.write(a, b"A" * 4 * PAGE)
    c = p.fork("C")
    p.write(a, b"B")                             # page 0: the parent's own copy, AE; pages 1-3 shared
    before = [k.page(p, a + i * PAGE) for i in range(4)]
    t = p.mmap(8)
    b = p.mremap(a, 4, 4, maymove=True, fixed=t + 2 * PAGE)
    after = [k.page(p, b + i * PAGE) for i in range(4)]
    keep = ("pfn", "refcount", "mapcount", "exclusive", "writable", "pincount")
    assert [[getattr(i, f) for f in keep] for i in after] == [[getattr(i, f) for f in keep] for i in before]
    assert after[0].exclusive and after[0].writable and not after[1].exclusive
    assert c.read(a, 1) == b"A"
    k.check_invariants()


def test_a_moved_anon_vma_keeps_its_pgoff_and_anon_vma():
    """copy_vma(): the new VMA's vm_pgoff is the old one's plus the offset, and it shares the anon_vma."""
    k, p = proc()
    a = p.mmap(8)
    p.write(a, b"x" * 8 * PAGE)
    old = p.mm.find_vma(a)
    pgoff, av = old.pgoff, old.anon_vma
    b = p.mremap(a + 4 * PAGE, 4, 4, maymove=True, fixed=p.mmap(4))
    new = p.mm.find_vma(b)
    assert new.pgoff == pgoff + 4 and new.anon_vma is av
    assert new.pgoff != new.start >> 12


def test_a_whole_pmd_moved_to_an_aligned_address_stays_pmd_mapped():
    """move_huge_pmd(): a PMD-mapped THP moved whole to a PMD-aligned target is one PMD again, counters kept."""
    k, p = proc()
    a = thp(k, p)
    before = k.page(p, a)
    raw = p.mmap(1024, "none")
    t = (raw + PMD) & ~(PMD - 1)
    b = p.mremap(a, 512, 512, maymove=True, fixed=t)
    info = k.page(p, b + 5 * PAGE)
    assert info.pmd_mapped and info.order == 9 and k.page(p, b).pfn == before.pfn
    assert (info.large_mapcount, info.entire_mapcount, info.refcount) == (1, 1, 1)
    assert k.page(p, b).exclusive
    assert "move_huge_pmd" in k.trace.functions() and "__split_huge_pmd" not in k.trace.functions()
    k.check_invariants()


def test_a_whole_pmd_moved_to_an_unaligned_address_is_split_first():
    """A PMD moved to an address that is not PMD-aligned is split (PTE-mapped), every page AE, counters per PTE."""
    k, p = proc()
    a = thp(k, p)
    t = p.mmap(600, "none") + PAGE
    b = p.mremap(a, 512, 512, maymove=True, fixed=t)
    info = k.page(p, b + 5 * PAGE)
    assert not info.pmd_mapped and info.order == 9
    assert (info.large_mapcount, info.entire_mapcount, info.nr_pages_mapped, info.refcount) == (512, 0, 512, 512)
    assert all(k.page(p, b + i * PAGE).exclusive for i in (0, 1, 300, 511))
    k.check_invariants()


def test_cow_c_partial_mremap_splits_the_pmd_and_maps_the_folio_in_two_vmas():
    """THP_RUN_PARTIAL_MREMAP: the upper half moves onto a PROT_NONE area; one order-9 folio, PTE-mapped in two VMAs."""
    k, p = proc()
    a = thp(k, p)
    r = p.mmap(256, "none")
    assert p.mremap(a + 256 * PAGE, 256, 256, maymove=True, fixed=r) == r
    lo, hi = k.page(p, a), k.page(p, r)
    assert hi.pfn == lo.pfn + 256 and lo.order == hi.order == 9
    assert not lo.pmd_mapped and (lo.large_mapcount, lo.nr_pages_mapped) == (512, 512)
    assert lo.exclusive and hi.exclusive and hi.writable
    assert p.mm.find_vma(r).prot == "rw"             # the moved VMA's flags, not PROT_NONE's
    assert p.mm.find_vma(r).anon_vma is p.mm.find_vma(a).anon_vma
    k.check_invariants()


def test_rmap_walks_find_pages_at_their_new_address():
    """Migration, deferred split and fork all reach the moved half through vm_pgoff."""
    k, p = proc()
    a = thp(k, p)
    r = p.mmap(256, "none")
    p.mremap(a + 256 * PAGE, 256, 256, maymove=True, fixed=r)
    res = k.migrate(p, r, 2)
    assert res.migrated == 2 and k.page(p, r).pfn == k.page(p, a).pfn + 256
    c = p.fork("C")
    assert c.read(r, 1) == b"\x01"
    c.exit()
    p.munmap(a, 256)                                  # the folio is now partially mapped
    assert k.shrink_deferred_split() == (1, 0)
    info = k.page(p, r + PAGE)
    assert info.order == 0 and p.read(r + PAGE, 1) == b"\x01"
    k.check_invariants()


def test_a_partial_move_of_an_mthp_moves_ptes_only():
    """An mTHP (PTE-mapped by nature) half moved: no split, the folio keeps its order and counters."""
    k, p = proc()
    a = thp(k, p, order=4)
    r = p.mmap(8, "none")
    p.mremap(a + 8 * PAGE, 8, 8, maymove=True, fixed=r)
    lo, hi = k.page(p, a), k.page(p, r)
    assert lo.order == hi.order == 4 and hi.pfn == lo.pfn + 8
    assert (lo.large_mapcount, lo.refcount) == (16, 16)
    assert "move_ptes" in k.trace.functions()
    k.check_invariants()


def test_fixed_unmaps_what_is_at_the_target():
    """MREMAP_FIXED replaces the target mapping; its pages are freed."""
    k, p = proc()
    a = p.mmap(2)
    p.write(a, b"a")
    t = p.mmap(2)
    p.write(t, b"t")
    gone = k.page(p, t).pfn
    assert p.mremap(a, 2, 2, maymove=True, fixed=t) == t
    assert p.read(t, 1) == b"a" and p.mm.find_vma(a) is None
    assert k.page(p, t).pfn != gone
    k.check_invariants()


def test_dontunmap_keeps_the_old_vma_empty():
    """MREMAP_DONTUNMAP moves the pages and leaves the old VMA mapped but empty (reads give zeros)."""
    k, p = proc()
    a = p.mmap(2)
    p.write(a, b"a")
    b = p.mremap(a, 2, 2, maymove=True, dontunmap=True)
    assert b != a and p.read(b, 1) == b"a"
    assert p.mm.find_vma(a) is not None and k.page(p, a).present is False
    assert p.read(a, 1) == b"\x00"
    k.check_invariants()


def test_dontunmap_of_a_file_mapping_is_einval_before_v5_13():
    """MREMAP_DONTUNMAP took only private anon mappings until v5.13 (a4609387859f)."""
    for era, ok in (("5.9", False), ("6.18", True)):
        k, p = proc(era)
        f = k.open("f", npages=2)
        m = p.mmap(2, file=f, shared=True)
        if ok:
            p.mremap(m, 2, 2, maymove=True, dontunmap=True)
        else:
            with pytest.raises(KernelError, match="EINVAL"):
                p.mremap(m, 2, 2, maymove=True, dontunmap=True)


def test_a_shared_file_mapping_moves_and_stays_in_i_mmap():
    """A moved MAP_SHARED file mapping keeps its file offset: the page cache page is found at the new address."""
    k, p = proc()
    f = k.open("f", npages=4)
    f.write(2 * PAGE, b"two")
    m = p.mmap(4, file=f, shared=True)
    p.read(m + 2 * PAGE, 1)
    b = p.mremap(m, 4, 8, maymove=True, fixed=p.mmap(16) + 4 * PAGE)
    assert p.read(b + 2 * PAGE, 3) == b"two"
    f.truncate(1)
    assert k.page(p, b + 2 * PAGE).present is False    # truncation's rmap walk found the moved PTE
    k.check_invariants()


ERRNOS = [
    ("unaligned address", lambda p, a: p.mremap(a + 1, 1, 1), "EINVAL"),
    ("zero new length", lambda p, a: p.mremap(a, 1, 0), "EINVAL"),
    ("fixed without maymove", lambda p, a: p.mremap(a, 1, 1, fixed=a + (1 << 30)), "EINVAL"),
    ("dontunmap without maymove", lambda p, a: p.mremap(a, 1, 1, dontunmap=True), "EINVAL"),
    ("dontunmap with a resize", lambda p, a: p.mremap(a, 1, 2, maymove=True, dontunmap=True), "EINVAL"),
    ("unaligned target", lambda p, a: p.mremap(a, 1, 1, maymove=True, fixed=a + (1 << 30) + 8), "EINVAL"),
    ("overlapping target", lambda p, a: p.mremap(a, 4, 4, maymove=True, fixed=a + PAGE), "EINVAL"),
    ("target past TASK_SIZE", lambda p, a: p.mremap(a, 1, 1, maymove=True, fixed=1 << 47), "EINVAL"),
    ("old length 0 on a private mapping", lambda p, a: p.mremap(a, 0, 1, maymove=True), "EINVAL"),
    ("no mapping at addr", lambda p, a: p.mremap(a + (1 << 30), 1, 1), "EFAULT"),
    ("grow a range that leaves its VMA", lambda p, a: p.mremap(a, 6, 8, maymove=True), "EFAULT"),
    ("grow past the address space", lambda p, a: p.mremap(a, 4, 2**40, maymove=True), "EINVAL"),
    ("grow with no room and no maymove", lambda p, a: p.mremap(a, 4, 8), "ENOMEM"),
]


@pytest.mark.parametrize("name,call,errno", ERRNOS, ids=[e[0] for e in ERRNOS])
def test_refusals_name_the_kernels_errno_and_change_nothing(name, call, errno):
    """Each refusal raises the errno mm/mremap.c gives, and the state is as it was."""
    k, p = proc()
    a = p.mmap(4)
    p.write(a, b"x" * 4 * PAGE)
    p.mmap(2)
    before = state(k)
    with pytest.raises(KernelError) as e:
        call(p, a)
    assert e.value.errno == errno
    assert state(k) == before


def test_growing_past_task_size_was_enomem_before_v6_17():
    """Before v6.17 a new length past TASK_SIZE failed late, with ENOMEM (no room); since, EINVAL up front."""
    for era, errno in (("6.2", "ENOMEM"), ("6.18", "EINVAL")):
        k, p = proc(era)
        a = p.mmap(4)
        with pytest.raises(KernelError) as e:
            p.mremap(a, 4, 2**40, maymove=True)
        assert e.value.errno == errno


@pytest.mark.parametrize("args", [(1.5, 1, 1), (0, True, 1), (0, 1, None), (0, -1, 1), (0, 1, "2")])
def test_wrong_types_are_invalid_argument(args):
    """Non-int, bool or negative arguments raise InvalidArgument before anything happens."""
    k, p = proc()
    with pytest.raises(InvalidArgument):
        p.mremap(*args)


def test_a_fixed_move_across_several_vmas_is_efault_before_v6_17():
    """Before v6.17 the range of a move had to lie in one VMA (EFAULT), and nothing changed."""
    k, p = proc("6.2")
    a = p.mmap(4)
    p.mprotect(a + 2 * PAGE, 2, "r")                # two VMAs
    t = p.mmap(8)
    before = state(k)
    with pytest.raises(KernelError, match="EFAULT"):
        p.mremap(a, 4, 4, maymove=True, fixed=t)
    assert state(k) == before


def _multi(k):
    """Three VMAs with a hole: [rw rw][r][-][rw], moved by one MREMAP_FIXED onto an 8-page PROT_NONE area."""
    p = k.spawn("P")
    a = p.mmap(5)
    p.write(a, b"m" * 5 * PAGE)
    p.mprotect(a + 2 * PAGE, 1, "r")
    p.munmap(a + 3 * PAGE, 1)
    t = p.mmap(8, "none")
    r = p.mremap(a, 5, 5, maymove=True, fixed=t + PAGE)
    seen = [(k.page(p, r + i * PAGE).present, k.page(p, r + i * PAGE).exclusive) for i in range(5)]
    return p, a, t, r, seen


def test_a_fixed_move_spans_several_vmas_and_keeps_the_gaps_since_v6_17():
    """remap_move(): every VMA of the range moves, shifted alike; the hole stays a hole (the target's PROT_NONE
    page there stays mapped), and the source range is empty."""
    k = Kernel(era="6.18")
    p, a, t, r, seen = _multi(k)
    assert r == t + PAGE
    assert seen == [(True, True), (True, True), (True, True), (False, False), (True, True)]
    assert [v.prot for v in p.mm.vmas_in(r, r + 5 * PAGE)] == ["rw", "r", "none", "rw"]
    assert p.mm.vmas_in(a, a + 5 * PAGE) == []
    assert "remap_move" in k.trace.functions()
    k.check_invariants()


def test_a_move_with_a_hole_at_the_start_is_efault():
    """remap_move(): "No gap permitted at the start of the range"."""
    k, p = proc()
    a = p.mmap(4)
    p.munmap(a, 1)
    t = p.mmap(8)
    before = state(k)
    with pytest.raises(KernelError, match="EFAULT"):
        p.mremap(a, 4, 4, maymove=True, fixed=t)
    assert state(k) == before


def test_trace_names_the_kernel_functions():
    """A partial move of a THP is traced as copy_vma, split_huge_pmd, move_ptes, do_munmap, move_vma."""
    k, p = proc()
    a = thp(k, p)
    r = p.mmap(256, "none")
    op = k.trace.op + 1
    p.mremap(a + 256 * PAGE, 256, 256, maymove=True, fixed=r)
    funcs = [e.func for e in k.trace.of_op(op)]
    for f in ("mremap_to", "copy_vma", "__split_huge_pmd", "move_ptes", "do_munmap", "move_vma"):
        assert f in funcs, funcs


def test_invariants_hold_over_random_mremaps():
    """A seeded mix of mremap, fork, write and munmap on THPs and small pages keeps every invariant."""
    for seed in range(6):
        rnd = random.Random(seed)
        k, p = proc()
        k.thp.set("64kB", "always")
        a = thp(k, p)
        p.mmap(16)
        procs = [p]
        for _ in range(25):
            q = rnd.choice([x for x in procs if x.alive])
            vmas = q.mm.vmas
            if not vmas:
                break
            v = rnd.choice(vmas)
            n = v.npages
            off = rnd.randrange(n)
            cnt = rnd.randint(1, n - off)
            op = rnd.choice(["move", "move", "fixed", "grow", "shrink", "fork", "write", "munmap"])
            try:
                if op == "move":
                    q.mremap(v.start + off * PAGE, cnt, cnt + rnd.choice([0, 0, 7]), maymove=True)
                elif op == "fixed":
                    t = q.mmap(cnt + 600, "none")
                    q.mremap(v.start + off * PAGE, cnt, cnt, maymove=True,
                             fixed=t + rnd.choice([0, PAGE, (PMD - t % PMD) % PMD]))
                elif op == "grow":
                    q.mremap(v.start, n, n + rnd.randint(1, 600))
                elif op == "shrink" and n > 1:
                    q.mremap(v.start, n, rnd.randint(1, n - 1))
                elif op == "fork":
                    procs.append(q.fork())
                elif op == "write" and v.write:
                    q.write(v.start + off * PAGE, b"w")
                elif op == "munmap":
                    q.munmap(v.start + off * PAGE, cnt)
            except MMError:
                pass
            k.check_invariants()


# -- cow.c: THP_RUN_PARTIAL_MREMAP ---------------------------------------------------------

def test_cow_c_cases_pass_on_a_partially_mremapped_thp_in_6_18():
    """Every cow.c anon case passes on a partially mremap()ed 2 MiB THP and 64 KiB mTHP, and in the conformance set."""
    from mmkit.scenarios.cow_large import COW_LARGE_CASES, run_large
    from mmkit.scenarios.cow_selftest import partial_mremap_thp_cases, run_case
    for size in (2048, 64):
        for case in partial_mremap_thp_cases(size):
            assert run_case(case, "6.18"), case.name
    cases = [sc for sc in COW_LARGE_CASES if "[partial_mremap]" in sc.name]
    assert len(cases) == 8
    for sc in cases:
        rows, _ = run_large(sc, Kernel(era="6.18"))
        assert rows[-1].outcome is True, sc.name


def test_in_5_7_the_moved_half_still_mapped_by_the_child_stops_the_vmsplice_leak():
    """5.7 reused a THP page when no page of the folio was mapped twice: after the child unmaps the lower half
    the moved half is still mapped by both, so the parent copies (pass) where a PTE-mapped THP leaks (fail)."""
    from mmkit.scenarios.cow_selftest import partial_mremap_thp_cases, run_case
    from mmkit.scenarios.thp_cow import thp_cases
    name = "vmsplice() + unmap in child ..."
    moved = next(c for c in partial_mremap_thp_cases() if c.name.startswith(name))
    pte = next(c for c in thp_cases("pte") if c.name.startswith(name))
    assert run_case(moved, "5.7") and not run_case(pte, "5.7")
    assert run_case(moved, "6.18") and run_case(pte, "6.18")


# -- live --------------------------------------------------------------------------------

def _live():
    from mmkit.live import available
    ok, why = available()
    if not ok:
        pytest.skip(why)
    from mmkit.live import LiveKernel
    return LiveKernel()


def test_live_mremap_refuses_with_the_same_errnos_as_the_model():
    """On the running kernel every refusal of the errno table gives the model's errno."""
    lk = _live()
    try:
        for name, call, errno in ERRNOS:
            p = lk.spawn("P")
            a = p.mmap(4)
            p.write(a, b"x" * 4 * PAGE)
            p.mmap(2)
            with pytest.raises(KernelError) as e:
                call(p, a)
            assert e.value.errno == errno, name
            p.exit()
    finally:
        lk.close()


def test_live_partial_mremap_of_a_thp_matches_the_model():
    """The cow.c preparation on the live kernel: one order-9 folio, PTE-mapped, the moved half as in the model."""
    lk = _live()
    try:
        from mmkit.live.thp import thp_available
        ok, why = thp_available()
        if not ok:
            pytest.skip(why)
        got = []
        for k in (Kernel(era="6.18"), lk):
            p = k.spawn("P")
            k.thp.set("2048kB", "madvise")
            a = thp(k, p)
            r = p.mmap(256, "none")
            assert p.mremap(a + 256 * PAGE, 256, 256, maymove=True, fixed=r) == r
            lo, hi = k.page(p, a), k.page(p, r)
            got.append((lo.order, lo.pmd_mapped, hi.pfn - lo.pfn, hi.head, lo.large_mapcount, hi.nr_pages_mapped,
                        lo.exclusive))
        assert got[0] == got[1] == (9, False, 256, False, 512, 512, True)
    finally:
        lk.close()


def test_a_snapshot_taken_before_a_move_brings_the_old_layout_back():
    """restore() undoes a move: the VMAs and the PMD mapping are as they were."""
    k, p = proc()
    a = thp(k, p)
    r = p.mmap(256, "none")
    snap = k.snapshot()
    before = state(k)
    p.mremap(a + 256 * PAGE, 256, 256, maymove=True, fixed=r)
    k.restore(snap)
    assert state(k) == before and k.page(p, a).pmd_mapped
    k.check_invariants()


def _random_remap(k, seed):
    """One seeded program: 8 pages, some written, maybe a fork and a child COW, then one mremap (fixed move,
    DONTUNMAP move, shrink, or fixed move that shrinks); returns what user space sees of both ranges."""
    rnd = random.Random(seed)
    out = []
    p = k.spawn("P")
    a = p.mmap(8)
    for i in range(8):
        if rnd.random() < 0.7:
            p.write(a + i * PAGE, bytes([65 + i]))
    c = p.fork("C") if rnd.random() < 0.5 else None
    if c and rnd.random() < 0.5:
        c.write(a, b"c")
    off = rnd.randrange(8)
    n = rnd.randint(1, 8 - off)
    kind = rnd.choice(["fixed", "dontunmap", "shrink", "fixed_shrink"])
    t = p.mmap(n + 2, "none")
    args = {"fixed": (a + off * PAGE, n, n, True, t + PAGE, False),
            "dontunmap": (a + off * PAGE, n, n, True, None, True),
            "shrink": (a, 8, off + 1, False, None, False),
            "fixed_shrink": (a + off * PAGE, n, max(1, n - 1), True, t + PAGE, False)}[kind]
    try:
        r = p.mremap(*args[:3], maymove=args[3], fixed=args[4], dontunmap=args[5])
        out.append(("ok", kind, r - a if kind == "shrink" else r - t if kind != "dontunmap" else "moved"))
    except MMError as e:
        out.append(("refused", kind, getattr(e, "errno", type(e).__name__)))
        r = None
    windows = [(a, 8)] + ([(r, args[2])] if r is not None and kind != "shrink" else [])
    for base, cnt in windows:
        for i in range(cnt):
            info = k.page(p, base + i * PAGE)
            out.append((base == a, i) + ((info.anon, info.zero_page, info.mapcount, info.exclusive,
                                          p.read(base + i * PAGE, 1)) if info.present else (None,)))
    return out


def test_live_kernel_agrees_on_random_small_page_mremaps():
    """30 seeded mremap programs give the same errnos, data, mapcounts and AE bits on the model and live."""
    lk = _live()
    try:
        for seed in range(30):
            assert _random_remap(Kernel(era="6.18"), seed) == _random_remap(lk, seed), f"seed {seed}"
    finally:
        lk.close()


def test_live_kernel_moves_several_vmas_as_the_model_does():
    """Live 6.18 moves the three VMAs and keeps the hole exactly as the model's remap_move() does."""
    lk = _live()
    try:
        got = [_multi(k)[4] for k in (Kernel(era="6.18"), lk)]
        assert got[0] == got[1]
    finally:
        lk.close()


def test_live_lengths_past_task_size_or_64_bits_are_refused_without_effect():
    """Live: munmap past TASK_SIZE is the kernel's EINVAL, as in the model; a length that does not fit in 64 bits
    is refused before the call (the channel would pass it modulo 2**64) and the mapping stays."""
    lk = _live()
    try:
        p = lk.spawn("P")
        a = p.mmap(4)
        p.write(a, b"x")
        with pytest.raises(KernelError, match="EINVAL"):
            p.munmap(a, 2**36)
        for call in (lambda: p.munmap(a, 2**52 + 1), lambda: p.mremap(a, 4, 2**52 + 1, maymove=True)):
            with pytest.raises(InvalidArgument):
                call()
        assert p.read(a, 1) == b"x"
    finally:
        lk.close()
