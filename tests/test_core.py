"""Behaviour of each modelled operation under the default era (6.18)."""

import pytest

from mmkit import GUP_PIN_COUNTING_BIAS, Kernel, SIGBUS, SIGSEGV

PAGE = 4096


@pytest.fixture
def k():
    return Kernel()


def decisions(k, func):
    return [e.decision for e in k.trace if e.func == func]


def test_read_fault_maps_zero_page(k):
    """A read of untouched anon memory maps the shared zero page read-only, with no counters."""
    p = k.spawn()
    a = p.mmap(1)
    assert p.read(a, 3) == b"\0\0\0"
    info = k.page(p, a)
    assert info.zero_page and not info.writable and info.mapcount == 0 and not info.anon
    assert k.zero_page.refcount == 1 and k.nr_folios == 0


def test_write_fault_allocates_exclusive_page(k):
    """A first write allocates an exclusive, writable anon page with refcount 1 and mapcount 1."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"hello")
    info = k.page(p, a)
    assert (info.anon, info.exclusive, info.writable, info.refcount, info.mapcount) == (True, True, True, 1, 1)
    assert p.read(a, 5) == b"hello"


def test_write_after_zero_page_copies_zeroed_page(k):
    """Writing a zero-page mapping COWs it into a new zeroed page."""
    p = k.spawn()
    a = p.mmap(1)
    p.read(a, 1)
    p.write(a + 10, b"x")
    info = k.page(p, a)
    assert not info.zero_page and info.exclusive and info.writable
    assert p.read(a, 11) == b"\0" * 10 + b"x"
    assert "wp_page_copy" in decisions(k, "do_wp_page")


def test_fork_shares_and_write_protects(k):
    """fork shares an anon page read-only in both processes and clears PageAnonExclusive."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    for proc in (p, c):
        info = k.page(proc, a)
        assert (info.refcount, info.mapcount, info.exclusive, info.writable) == (2, 2, False, False)
    assert k.page(p, a).pfn == k.page(c, a).pfn


def test_cow_child_copies_parent_then_reuses(k):
    """The first writer copies; the remaining user reuses the old page in place."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    old = k.page(p, a).pfn
    c.write(a, b"B")
    assert k.page(c, a).pfn != old and k.page(c, a).exclusive
    assert k.page(p, a).pfn == old and (k.page(p, a).refcount, k.page(p, a).exclusive) == (1, False)
    p.write(a, b"C")
    assert k.page(p, a).pfn == old and k.page(p, a).exclusive and k.page(p, a).writable
    assert (p.read(a, 1), c.read(a, 1)) == (b"C", b"B")
    assert decisions(k, "wp_can_reuse_anon_folio") == ["no reuse", "reuse"]


def test_cow_reason_names_counters(k):
    """The trace says why a COW copied, with the refcount it read."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    p.fork()
    p.write(a, b"B")
    text = [str(e) for e in k.trace if e.func in ("do_wp_page", "wp_can_reuse_anon_folio")]
    assert "wp_can_reuse_anon_folio: refcount 2 > 1 (mapcount 2) -> no reuse" in text
    assert "do_wp_page: page not exclusive -> wp_page_copy" in text


def test_exit_frees_pages(k):
    """exit drops every mapping; unshared pages are freed."""
    p = k.spawn()
    a = p.mmap(3)
    for i in range(3):
        p.write(a + i * PAGE, b"x")
    assert k.nr_folios == 3
    p.exit()
    assert k.nr_folios == 0 and not p.alive


def test_fork_copies_pinned_page_for_child(k):
    """A maybe-pinned exclusive page is copied for the child at fork; the parent stays writable."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    pin = p.pin(a, 1, write=True, longterm=True)
    c = p.fork()
    pi, ci = k.page(p, a), k.page(c, a)
    assert pi.pfn != ci.pfn
    assert (pi.writable, pi.exclusive, pi.refcount, pi.pincount) == (True, True, 1 + GUP_PIN_COUNTING_BIAS, 1)
    assert (ci.writable, ci.exclusive, ci.refcount) == (True, True, 1)
    p.write(a, b"B")
    assert pin.read(1) == b"B" and c.read(a, 1) == b"A"


def test_pin_counts_with_bias_and_unpin_restores(k):
    """FOLL_PIN adds 1024 to a small folio's refcount; unpin takes it back."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    pin = p.pin(a)
    assert k.page(p, a).refcount == 1025 and k.page(p, a).maybe_pinned
    pin.unpin()
    assert k.page(p, a).refcount == 1 and k.page(p, a).pincount == 0


def test_get_user_pages_adds_one(k):
    """FOLL_GET adds a plain reference and never unshares."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    ref = p.get_user_pages(a, 1)
    assert k.page(p, a).refcount == 3 and k.page(p, a).pfn == k.page(c, a).pfn
    assert ref.read(1) == b"A"
    ref.put()
    assert k.page(p, a).refcount == 2


def test_ro_pin_on_shared_page_unshares_read_only(k):
    """A R/O pin on a shared anon page unshares: a new exclusive page, still read-only."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    old = k.page(c, a).pfn
    pin = p.pin(a, 1, write=False, longterm=True)
    pi = k.page(p, a)
    assert pi.pfn != old and pi.exclusive and not pi.writable
    assert k.page(c, a).pfn == old and k.page(c, a).refcount == 1
    p.write(a, b"B")
    assert k.page(p, a).pfn == pi.pfn and k.page(p, a).writable
    assert pin.read(1) == b"B"


def test_ro_pin_after_child_exit_marks_exclusive_without_copy(k):
    """Unsharing a page nobody else uses only sets PageAnonExclusive."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    c.exit()
    old = k.page(p, a).pfn
    p.pin(a, 1, write=False, longterm=False)
    info = k.page(p, a)
    assert info.pfn == old and info.exclusive and not info.writable


def test_zero_page_pin_counts_nothing(k):
    """Since 6.5 pinning the zero page (a short-term R/O pin, which does not unshare) touches no counter."""
    p = k.spawn()
    a = p.mmap(1)
    p.read(a, 1)
    pin = p.pin(a, 1, write=False, longterm=False)
    assert k.page(p, a).zero_page and k.zero_page.refcount == 1 and pin.read(1) == b"\0"
    pin.unpin()
    assert k.zero_page.refcount == 1


def test_zero_page_pinned_before_6_5():
    """Before 6.5 a pin of the zero page adds the bias like on any page, and unpin takes it back."""
    k = Kernel(era="5.19")          # 5.19 does not unshare non-anon pages either
    p = k.spawn()
    a = p.mmap(1)
    p.read(a, 1)
    pin = p.pin(a, 1, write=False, longterm=True)
    assert k.page(p, a).zero_page and (k.zero_page.refcount, k.zero_page.pincount) == (1025, 1)
    k.check_invariants()
    pin.unpin()
    assert k.zero_page.refcount == 1


def test_longterm_ro_pin_of_zero_page_unshares_in_6_2(k):
    """Since 6.2 a long-term R/O pin of the zero page in a COW mapping unshares it."""
    p = k.spawn()
    a = p.mmap(1)
    p.read(a, 1)
    pin = p.pin(a, 1, write=False, longterm=True)
    info = k.page(p, a)
    assert not info.zero_page and info.anon and info.exclusive and not info.writable
    p.write(a, b"x")
    assert pin.read(1) == b"x"


def test_vmsplice_pipe_reads_old_data_after_parent_write(k):
    """vmsplice + unmap in the child, then a parent write: the pipe keeps the old data (CVE-2020-29374 fixed)."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"old")
    c = p.fork()
    pipe = c.vmsplice(a, 3)
    c.munmap(a, 1)
    info = k.page(p, a)
    assert (info.mapcount, info.refcount) == (1, 2)
    p.write(a, b"new")
    assert k.page(p, a).pfn != info.pfn
    assert pipe.read(3) == b"old" and pipe.pending == 0


def test_mprotect_write_protects_and_upgrades_exclusive(k):
    """mprotect(r) write-protects; mprotect(rw) makes an exclusive page writable again without a fault (6.2+)."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    p.mprotect(a, 1, "r")
    assert not k.page(p, a).writable
    with pytest.raises(SIGSEGV):
        p.write(a, b"B")
    p.mprotect(a, 1, "rw")
    assert k.page(p, a).writable


def test_mprotect_splits_vma(k):
    """mprotect on part of a VMA splits it."""
    p = k.spawn()
    a = p.mmap(4)
    p.mprotect(a + PAGE, 2, "r")
    assert [(v.start - a) // PAGE for v in p.mm.vmas] == [0, 1, 3]
    assert [v.prot for v in p.mm.vmas] == ["rw", "r", "rw"]


def test_madvise_dontneed_zaps(k):
    """MADV_DONTNEED drops the pages; anon memory reads back zeros."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    p.madvise(a, 1, "dontneed")
    assert not k.page(p, a).present and k.nr_folios == 0
    assert p.read(a, 1) == b"\0"


def test_dontfork_and_wipeonfork(k):
    """MADV_DONTFORK leaves no VMA in the child; MADV_WIPEONFORK an empty one."""
    p = k.spawn()
    a, b = p.mmap(1), p.mmap(1)
    p.write(a, b"A")
    p.write(b, b"B")
    p.madvise(a, 1, "dontfork")
    p.madvise(b, 1, "wipeonfork")
    c = p.fork()
    with pytest.raises(SIGSEGV):
        c.read(a, 1)
    assert c.read(b, 1) == b"\0"
    assert k.page(p, a).exclusive and k.page(p, b).exclusive and k.page(p, b).writable


def test_shared_anon_mapping_is_shared_after_fork(k):
    """MAP_SHARED anonymous memory is shmem: parent and child see each other's writes."""
    p = k.spawn()
    a = p.mmap(1, shared=True)
    p.write(a, b"A")
    c = p.fork()
    c.write(a, b"B")
    assert p.read(a, 1) == b"B"
    assert k.page(p, a).pfn == k.page(c, a).pfn and k.page(p, a).in_page_cache


def test_private_file_mapping_cows_into_anon(k):
    """A write to a private file mapping makes an anon copy; the page cache keeps the file data."""
    f = k.open("data", npages=1)
    f.write(0, b"file")
    p = k.spawn()
    m = p.mmap(1, file=f)
    assert p.read(m, 4) == b"file" and k.page(p, m).in_page_cache and not k.page(p, m).writable
    p.write(m, b"mine")
    assert k.page(p, m).anon and k.page(p, m).exclusive
    assert f.read(0, 4) == b"file"


def test_shared_file_mapping_writes_reach_file(k):
    """Writes through a shared file mapping land in the page cache."""
    f = k.open("data", npages=1)
    p = k.spawn()
    m = p.mmap(1, file=f, shared=True)
    p.write(m, b"abc")
    assert f.read(0, 3) == b"abc"
    f.write(1, b"X")
    assert p.read(m, 3) == b"aXc"


def test_truncate_zaps_shared_and_private_and_sigbus(k):
    """Truncation zaps shared mappings and private COW copies; access then raises SIGBUS."""
    f = k.open("data", npages=2)
    p = k.spawn()
    s, q = p.mmap(2, file=f, shared=True), p.mmap(2, file=f)
    p.write(s, b"shared")
    p.write(q + PAGE, b"private")
    f.truncate(1)
    assert k.page(p, s).present and not k.page(p, q + PAGE).present
    with pytest.raises(SIGBUS):
        p.read(q + PAGE, 1)
    with pytest.raises(SIGBUS):
        p.write(s + PAGE, b"x")
    assert p.read(s, 6) == b"shared"


def test_truncated_pinned_page_survives_as_orphan(k):
    """A pinned page-cache page outlives truncation; the pin still reads it."""
    f = k.open("memfd", npages=1, shmem=True)
    p = k.spawn()
    m = p.mmap(1, file=f, shared=True)
    p.write(m, b"dma")
    pin = p.pin(m, 1, write=True, longterm=True)
    f.truncate(0)
    (orphan,) = k.holders[pin.id].folios()
    assert orphan.mapping is None and orphan.refcount == 1024 and orphan.mapcount == 0
    assert pin.read(3) == b"dma"
    f.truncate(1)
    assert f.read(0, 3) == b"\0\0\0"
    pin.unpin()
    k.check_invariants()


def test_longterm_write_pin_of_ext4_before_6_5_is_taken():
    """Before 6.5 a long-term writable pin of a shared ext4 mapping was allowed."""
    k = Kernel(era="6.2")
    f = k.open("data", npages=1)
    p = k.spawn()
    m = p.mmap(1, file=f, shared=True)
    p.write(m, b"x")
    pin = p.pin(m, 1, write=True, longterm=True)
    assert k.page(p, m).pincount == 1 and k.page(p, m).in_page_cache
    pin.unpin()


def test_mprotect_same_protection_touches_nothing(k):
    """mprotect() to the protection a VMA already has changes no PTE (mprotect_fixup() returns early)."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"x")
    p.fork()
    p.pin(a)                        # unshare: an exclusive page mapped read-only
    assert not k.page(p, a).writable
    p.mprotect(a, 1, "rw")
    assert not k.page(p, a).writable and len(p.mm.vmas) == 1


def test_5_9_reuse_keeps_parent_anon_vma():
    """5.9-5.18 reused a page without moving it to the child's anon_vma; 5.19 moves it again."""
    for name, moves in (("5.9", False), ("5.19", True)):
        k = Kernel(era=name)
        p = k.spawn()
        a = p.mmap(1)
        p.write(a, b"A")
        c = p.fork()
        p.exit()
        c.write(a, b"B")
        assert (c.mm.pte(a).folio.mapping is c.mm.vmas[0].anon_vma) is moves, name


def test_rmap_walk_visits_only_covering_vmas(k):
    """An rmap walk skips VMAs whose range cannot hold the page (the interval tree query)."""
    p = k.spawn()
    a = p.mmap(4)
    for i in range(4):
        p.write(a + i * PAGE, b"x")
    p.mprotect(a + PAGE, 1, "r")
    p.mprotect(a + 3 * PAGE, 1, "r")
    assert len(p.mm.vmas) == 4
    r = k.migrate(p, a, 1)
    assert r.migrated == 1 and r.rmap_steps == 2       # one VMA to unmap, one to remap


def test_split_piece_reuses_neighbour_anon_vma(k):
    """A never-faulted piece of a split VMA reuses its neighbour's anon_vma (find_mergeable_anon_vma)."""
    p = k.spawn()
    a = p.mmap(2)
    p.mprotect(a + PAGE, 1, "r")
    p.mprotect(a + PAGE, 1, "rw")
    p.write(a, b"x")
    p.write(a + PAGE, b"y")
    v0, v1 = p.mm.vmas
    assert v0.anon_vma is v1.anon_vma and v0.anon_vma.num_active_vmas == 2


def test_fork_counts_its_own_reference_as_maybe_pinned():
    """Since 5.19 fork takes its reference before the maybe-pinned test: 1023 references become 1024."""
    k = Kernel()
    p = k.spawn()
    a, b = p.mmap(1), p.mmap(1)
    p.write(a, b"A")
    p.write(b, b"B")
    p.pin(b).unpin()                # MMF_HAS_PINNED
    for _ in range(1022):
        p.get_user_pages(a, 1)
    assert k.page(p, a).refcount == 1023
    c = p.fork()
    assert k.page(c, a).pfn != k.page(p, a).pfn


def test_longterm_write_pin_of_ext4_shared_mapping_refused(k):
    """Since 6.5 a long-term writable pin of a shared non-shmem file mapping fails with EFAULT."""
    from mmkit import KernelError
    f = k.open("data", npages=1)
    p = k.spawn()
    m = p.mmap(1, file=f, shared=True)
    p.write(m, b"x")
    before = k.dump()
    with pytest.raises(KernelError) as e:
        p.pin(m, 1, write=True, longterm=True)
    assert e.value.errno == "EFAULT" and k.dump() == before


def test_migrate_moves_shared_page_for_both(k):
    """Migration remaps every PTE of a shared page to the same new page, found by the rmap walk."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    old = k.page(p, a).pfn
    r = k.migrate(p, a, 1)
    assert (r.migrated, r.failed) == (1, 0) and r.rmap_steps >= 2
    assert k.page(p, a).pfn == k.page(c, a).pfn != old
    assert k.page(p, a).mapcount == 2 and c.read(a, 1) == b"A"


def test_migrate_keeps_exclusive(k):
    """PageAnonExclusive survives migration through the migration entry type."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    k.migrate(p, a, 1)
    info = k.page(p, a)
    assert info.exclusive and info.writable and info.refcount == 1


def test_migrate_fails_for_pinned_and_referenced(k):
    """A pinned page fails at unmap, a FOLL_GET-referenced one at the refcount check; both stay."""
    p = k.spawn()
    a, b = p.mmap(1), p.mmap(1)
    p.write(a, b"A")
    p.write(b, b"B")
    p.pin(a)
    p.get_user_pages(b, 1)
    before = (k.page(p, a), k.page(p, b))
    ra, rb = k.migrate(p, a, 1), k.migrate(p, b, 1)
    assert ra.failed == rb.failed == 1
    assert "pinned" in ra.reasons[a] and "refcount 2 != expected 1" in rb.reasons[b]
    assert (k.page(p, a), k.page(p, b)) == before


def test_migrate_unmapped_page_skips_rmap_walk(k):
    """A page-cache page that is not mapped migrates without an rmap walk (folio_mapped() shortcut)."""
    f = k.open("data", npages=1)
    f.write(0, b"x")
    p = k.spawn()
    m = p.mmap(1, file=f, shared=True)
    p.read(m, 1)
    old = k.page(p, m).pfn
    r = k.migrate(p, m, 1)
    assert r.migrated == 1 and r.rmap_steps == 2 and k.page(p, m).pfn != old
    assert any(e.func == "rmap_walk_file" for e in k.trace)


def test_anon_vma_chain_after_fork(k):
    """fork links the child VMA to the parent's anon_vma and gives it its own child anon_vma."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    pv, cv = p.mm.vmas[0], c.mm.vmas[0]
    assert cv.anon_vma is not pv.anon_vma and cv.anon_vma.parent is pv.anon_vma
    assert {avc.anon_vma for avc in cv.anon_vma_chain} == {pv.anon_vma, cv.anon_vma}
    assert {avc.vma for avc in pv.anon_vma.chains} == {pv, cv}


def test_reuse_moves_folio_to_own_anon_vma(k):
    """A child reusing an inherited page moves it to its own anon_vma (folio_move_anon_rmap)."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    p.exit()
    c.write(a, b"B")
    folio = c.mm.pte(a).folio
    assert folio.mapping is c.mm.vmas[0].anon_vma
    assert "folio_move_anon_rmap" in [e.func for e in k.trace]


def test_snapshot_restore_steps_back(k):
    """restore() returns to the saved state exactly, and handles keep working."""
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    s = k.snapshot()
    before, n = k.dump(), len(k.trace)
    c = p.fork()
    c.write(a, b"B")
    pin = p.pin(a)
    k.restore(s)
    assert k.dump() == before and len(k.trace) == n and not c.alive
    assert not pin.active
    p.write(a, b"C")
    assert p.read(a, 1) == b"C"
    k.check_invariants()


def test_invariants_after_topic_scenarios():
    """Every topic scenario keeps every invariant under every era."""
    from mmkit.era import ERAS
    from mmkit.scenarios import LARGE_TOPICS, TOPICS
    for era in ERAS:
        for sc in list(TOPICS.values()) + list(LARGE_TOPICS.values()):
            k = Kernel(era=era)
            sc.run(k)
            k.check_invariants()


def test_trace_events_name_ops(k):
    """Each trace event belongs to a named user operation."""
    p = k.spawn("P")
    a = p.mmap(1)
    p.write(a, b"x")
    ev = k.trace[-1]
    assert ev.func == "do_anonymous_page"
    assert k.trace.op_names[ev.op] == f"P.write({a:#x}, 1 bytes)"


def test_trace_count_mode_counts_functions():
    """trace="count" keeps only counts per kernel function."""
    k = Kernel(trace="count")
    p = k.spawn()
    a = p.mmap(2)
    p.write(a, b"x")
    p.write(a + PAGE, b"x")
    assert len(k.trace) == 0 and k.trace.functions()["do_anonymous_page"] == 2
