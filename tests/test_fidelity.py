"""Fidelity to the kernel source, issue 11: callers of migration, era names,
shmem entry points, fault-around order, the 5.9 page-cache fork copy."""

import pytest

from mmkit import InvalidArgument, Kernel, SIGBUS, era
from mmkit.era import ERAS, kernel_name
from mmkit.scenarios import era_table

PAGE = 4096


def _funcs(k, op=None):
    return [e.func for e in (k.trace.of_op(op if op is not None else k.trace.op))]


def _pinned_and_spliced(name="6.18"):
    k = Kernel(era=name)
    p = k.spawn("P")
    a, b = p.mmap(1), p.mmap(1)
    p.write(a, b"A")
    p.write(b, b"B")
    p.pin(a, write=True)
    p.vmsplice(b, 1)
    return k, p, a, b


# -- 1. compaction never isolates a pinned or spliced anon page ----------------------
@pytest.mark.parametrize("name", ["5.9", "6.2", "6.18"])
def test_compaction_skips_pinned_and_spliced_anon_pages(name):
    """Compaction's isolate_migratepages_block() skips an anon page with more references than mappings: no isolation, no retry."""
    k, p, a, b = _pinned_and_spliced(name)
    before = k.dump()
    ra, rb = k.migrate(p, a, 1, reason="compaction"), k.migrate(p, b, 1, reason="compaction")
    assert ra.migrated == rb.migrated == 0
    assert ra.reasons[a].startswith("skipped:") and rb.reasons[b].startswith("skipped:")
    assert ra.passes == {} and rb.unmap_cycles == {}
    assert "isolate_migratepages_block" in _funcs(k) and "try_to_migrate_one" not in _funcs(k)
    assert k.dump() == before


def test_move_pages_all_retries_pinned_page_with_eagain():
    """move_pages(MPOL_MF_MOVE_ALL) isolates a pinned page without a refcount test and gives up with -EAGAIN after 10 passes."""
    k, p, a, _ = _pinned_and_spliced()
    r = k.migrate(p, a, 1, reason="move_pages_all")
    assert r.failed == 1 and r.reasons[a].startswith("EAGAIN: pinned") and r.passes[a] == 10


def test_compaction_still_migrates_an_unpinned_page():
    """Compaction isolates and moves an anon page whose refcount equals its mapcount."""
    k = Kernel()
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    old = k.page(p, a).pfn
    r = k.migrate(p, a, 1, reason="compaction")
    assert r.migrated == 1 and k.page(p, a).pfn != old and k.page(p, a).exclusive


def test_compaction_isolates_a_pinned_page_cache_page_and_fails():
    """The pre-check is for anon pages only: a pinned page-cache page is isolated and fails with -EAGAIN."""
    k = Kernel()
    f = k.open("data", 1, shmem=True)
    p = k.spawn()
    m = p.mmap(1, file=f, shared=True)
    p.write(m, b"x")
    p.pin(m, write=True)
    r = k.migrate(p, m, 1, reason="compaction")
    assert r.failed == 1 and r.reasons[m].startswith("EAGAIN") and r.passes[m] == 10


def test_unknown_migration_reason_raises_and_changes_nothing():
    """An unknown migration caller is an InvalidArgument and leaves the state alone."""
    k, p, a, _ = _pinned_and_spliced()
    before, n = k.dump(), len(k.trace)
    with pytest.raises(InvalidArgument):
        k.migrate(p, a, 1, reason="kswapd")
    with pytest.raises(InvalidArgument):
        k.migrate(p, a, 1, reason=None)
    assert k.dump() == before and len(k.trace) == n


# -- 2. retries: 6.3+ keeps the folio unmapped between passes -------------------------
@pytest.mark.parametrize("name,cycles,func", [("6.2", 10, "migrate_pages"), ("6.18", 2, "migrate_pages_batch")])
def test_refcount_failure_retry_window_depends_on_era(name, cycles, func):
    """Up to 6.2 every pass unmaps and restores; since 6.3 a synchronous caller unmaps twice and the folio stays unmapped between passes."""
    k, p, _, b = _pinned_and_spliced(name)
    r = k.migrate(p, b, 1, reason="move_pages_all")
    assert r.passes[b] == 10 and r.unmap_cycles[b] == cycles
    assert func in _funcs(k)
    assert k.page(p, b).present and k.page(p, b).exclusive          # restored at the end
    assert era(name).migrate_batch is (name == "6.18")


def test_async_caller_keeps_folio_unmapped_for_all_ten_passes():
    """An asynchronous caller (compaction) gets one migrate_pages_batch() call: one unmap cycle, 10 passes."""
    k = Kernel()
    f = k.open("data", 1)
    p = k.spawn()
    m = p.mmap(1, file=f)
    p.read(m, 1)
    p.get_user_pages(m, 1)
    r = k.migrate(p, m, 1, reason="compaction")
    assert r.passes[m] == 10 and r.unmap_cycles[m] == 1


# -- 3. errnos per caller -----------------------------------------------------------
def test_move_pages_errnos():
    """move_pages(): no VMA -EFAULT, VMA without page -ENOENT, zero page -EFAULT, shared page without MOVE_ALL -EACCES."""
    k = Kernel()
    p = k.spawn()
    z, empty, shared = p.mmap(1), p.mmap(1), p.mmap(1)
    p.read(z, 1)
    p.write(shared, b"s")
    p.fork()
    r = k.migrate(p, 0x1000, 1, reason="move_pages")
    assert r.reasons[0x1000].startswith("EFAULT")
    assert k.migrate(p, empty, 1, reason="move_pages").reasons[empty].startswith("ENOENT")
    assert k.migrate(p, z, 1, reason="move_pages").reasons[z].startswith("EFAULT")
    assert k.migrate(p, shared, 1, reason="move_pages").reasons[shared].startswith("EACCES")
    assert k.migrate(p, shared, 1, reason="move_pages_all").migrated == 1


def test_compaction_skips_zero_page_and_holes_without_errno():
    """Compaction has no errno: the zero page (not on the LRU) and unmapped addresses are just skipped."""
    k = Kernel()
    p = k.spawn()
    z = p.mmap(1)
    p.read(z, 1)
    assert k.migrate(p, z, 1, reason="compaction").reasons[z].startswith("skipped")
    assert k.migrate(p, 0x1000, 1, reason="compaction").reasons[0x1000].startswith("skipped")


# -- 4. old eras show their own function names ----------------------------------------
def test_5_9_migration_trace_names_5_9_functions():
    """Under 5.9 a failed migration names try_to_unmap_one(), migrate_page_move_mapping(), expected_page_refs(), no try_share step."""
    k, p, a, _ = _pinned_and_spliced("5.9")
    k.migrate(p, a, 1)
    text = "\n".join(str(e) for e in k.trace.of_op(k.trace.op))
    funcs = _funcs(k)
    assert {"try_to_unmap_one", "migrate_page_move_mapping", "isolate_lru_page"} <= set(funcs)
    assert "expected_page_refs()" in text
    for modern in ("try_to_migrate_one", "folio_try_share_anon_rmap_pte", "folio_expected_ref_count",
                   "__migrate_folio", "migrate_folio_unmap", "folio_isolate_lru"):
        assert modern not in text


def test_6_18_migration_trace_names_current_functions():
    """Under 6.18 the same migration names try_to_migrate_one(), folio_try_share_anon_rmap_pte() and migrate_folio_unmap()."""
    k, p, a, _ = _pinned_and_spliced("6.18")
    k.migrate(p, a, 1)
    text = "\n".join(str(e) for e in k.trace.of_op(k.trace.op))
    assert "try_to_migrate_one" in text and "folio_try_share_anon_rmap_pte()" in text
    assert "migrate_folio_unmap" in _funcs(k)


def test_kernel_name_table():
    """kernel_name() gives each preset the function names of its kernel."""
    assert kernel_name(era("5.7"), "copy_present_ptes") == "copy_one_pte"
    assert kernel_name(era("5.9"), "copy_present_ptes") == "copy_present_pte"
    assert kernel_name(era("6.18"), "copy_present_ptes") == "copy_present_ptes"
    assert kernel_name(era("6.2"), "folio_expected_ref_count") == "folio_expected_refs"
    assert kernel_name(era("5.19"), "folio_try_share_anon_rmap_pte") == "page_try_share_anon_rmap"
    assert kernel_name(era("6.18").replace(gup_unshares_anon=False), "try_to_migrate_one") == "try_to_migrate_one"
    assert kernel_name(era("6.18"), "no_such_function") == "no_such_function"


def test_old_eras_name_their_fork_and_reuse_functions():
    """5.7 traces copy_one_pte() and reuse_swap_page(); 5.9 copy_present_pte() and an inline do_wp_page() test."""
    for name, fork_fn, reuse_fn in (("5.7", "copy_one_pte", "reuse_swap_page"),
                                    ("5.9", "copy_present_pte", "do_wp_page"),
                                    ("6.18", "copy_present_ptes", "wp_can_reuse_anon_folio")):
        k = Kernel(era=name)
        p = k.spawn()
        a = p.mmap(1)
        p.write(a, b"A")
        c = p.fork()
        assert fork_fn in _funcs(k)
        c.exit()
        p.write(a, b"B")
        assert reuse_fn in _funcs(k)
        assert "wp_can_reuse_anon_folio" not in _funcs(k) or name == "6.18"


# -- 5. memfd is shmem ----------------------------------------------------------------
@pytest.mark.parametrize("shmem,setattr_fn,remove_fn,fault_fn",
                         [(True, "shmem_setattr", "shmem_truncate_range", "shmem_fault"),
                          (False, "truncate_setsize", "truncate_inode_pages_range", "filemap_fault")])
def test_truncation_and_sigbus_name_the_file_systems_functions(shmem, setattr_fn, remove_fn, fault_fn):
    """Truncating a memfd runs shmem_setattr() and its SIGBUS comes from shmem_fault(); a disk file's from truncate_setsize() and filemap_fault()."""
    k = Kernel()
    f = k.open("m", 2, shmem=shmem)
    p = k.spawn()
    m = p.mmap(2, file=f, shared=True)
    p.write(m + PAGE, b"x")
    f.truncate(1)
    funcs = _funcs(k)
    calls = [e for e in k.trace if e.func == "unmap_mapping_range" and e.decision == "zap"]
    assert setattr_fn in funcs and remove_fn in funcs and len(calls) == 2
    with pytest.raises(SIGBUS):
        p.read(m + PAGE, 1)
    assert _funcs(k) == [fault_fn]


def test_shmem_fault_beyond_eof_is_sigbus():
    """shmem_fault() beyond i_size: shmem_get_folio_gfp() returns -EINVAL, VM_FAULT_SIGBUS."""
    from mmkit.filemap import shmem_fault
    k = Kernel()
    f = k.open("m", 1, shmem=True)
    p = k.spawn()
    m = p.mmap(2, file=f, shared=True)
    vma = p.mm.find_vma(m)
    with pytest.raises(SIGBUS):
        shmem_fault(k, vma, m + PAGE)
    assert "shmem_get_folio_gfp() returns -EINVAL" in str(k.trace[-1])


# -- 6. 5.9-5.18 fork copied maybe-pinned page-cache pages too ------------------------
def _pinned_cache_fork(name):
    k = Kernel(era=name)
    f = k.open("data", 2)
    f.write(0, b"file")
    p = k.spawn("P")
    m = p.mmap(2, file=f)                 # private file mapping
    p.write(m + PAGE, b"cow")             # gives the VMA an anon_vma: fork copies its page table
    p.read(m, 1)
    p.pin(m, write=False)
    c = p.fork("C")
    return k, p, c, m


def test_5_9_fork_copies_pinned_page_cache_page_for_child():
    """Under 5.9 a R/O-pinned page-cache page of a private mapping is copied for the child as an anon page."""
    k, p, c, m = _pinned_cache_fork("5.9")
    pc, cc = k.page(p, m), k.page(c, m)
    assert pc.in_page_cache and not cc.in_page_cache and cc.anon and cc.pfn != pc.pfn
    assert c.read(m, 4) == b"file"
    assert era("5.9").fork_copies_pinned_cache


def test_5_19_fork_shares_pinned_page_cache_page():
    """From 5.19 only anon pages are copied at fork: the child shares the pinned page-cache page."""
    k, p, c, m = _pinned_cache_fork("5.19")
    assert k.page(c, m).pfn == k.page(p, m).pfn and k.page(c, m).in_page_cache


def test_fork_copies_pinned_cache_needs_its_base_rule():
    """fork_copies_pinned_cache without fork_copies_maybe_pinned is refused."""
    with pytest.raises(InvalidArgument):
        era("5.8").replace(fork_copies_pinned_cache=True)


# -- 7. mprotect: v6.0 upgrades dirty exclusive anon PTEs only --------------------------
def test_era_6_0_upgrades_dirty_but_not_clean_exclusive_ptes():
    """era("6.0") makes a dirty exclusive anon PTE writable at mprotect(rw), a clean one not; it is not a table preset."""
    e = era("6.0")
    assert e.mprotect_upgrade == "dirty" and "6.0" not in ERAS
    k = Kernel(era=e)
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")                      # dirty
    p.mprotect(a, 1, "r")
    p.mprotect(a, 1, "rw")
    assert k.page(p, a).writable
    assert all(era_table(eras=["6.0"])[case]["6.0"] for case in era_table(eras=["6.0"]))


# -- 9. fault-around runs first ---------------------------------------------------------
def test_read_fault_on_cached_page_is_done_by_fault_around():
    """A read fault on a cached page is served by do_fault_around() (VM_FAULT_NOPAGE): no ->fault call."""
    k = Kernel()
    f = k.open("data", 4)
    f.write(0, b"cached")
    p = k.spawn()
    m = p.mmap(4, file=f)
    p.read(m, 1)
    funcs = _funcs(k)
    assert "do_fault_around" in funcs and "filemap_fault" not in funcs and "do_read_fault" not in funcs
    assert k.page(p, m).in_page_cache and not k.page(p, m).writable


def test_read_fault_on_uncached_page_calls_fault_after_fault_around():
    """When the faulting page is not cached, fault-around maps the cached neighbours first, then the fault handler reads it in."""
    k = Kernel()
    f = k.open("data", 4)
    f.write(PAGE, b"n")                   # page 1 cached, page 0 not
    p = k.spawn()
    m = p.mmap(4, file=f)
    p.read(m, 1)
    funcs = _funcs(k)
    assert funcs.index("do_fault_around") < funcs.index("filemap_add_folio") < funcs.index("do_read_fault")
    assert k.page(p, m + PAGE).present and k.page(p, m).present


def test_migrate_pages_applies_the_callers_checks_when_it_isolates():
    """migrate_pages() called on folios directly runs the caller's own tests before isolating (compaction skips a pinned anon page)."""
    from mmkit.migrate import migrate_pages
    k, p, a, _ = _pinned_and_spliced()
    folio = p.mm.pte(a).folio
    before = k.dump()
    r = migrate_pages(k, [(a, folio)], reason="compaction")
    assert r.reasons[a].startswith("skipped") and k.dump() == before
    with pytest.raises(InvalidArgument):
        migrate_pages(k, [(a, folio)], reason="numa")


def test_each_caller_says_what_happens_after_the_last_pass():
    """After the last -EAGAIN, move_pages() returns a count of pages not migrated, offlining tries again until a signal."""
    k, p, a, _ = _pinned_and_spliced()
    assert "number of pages not migrated" in k.migrate(p, a, 1, reason="move_pages").reasons[a]
    assert "offline_pages() calls it again" in k.migrate(p, a, 1, reason="offline").reasons[a]


@pytest.mark.parametrize("shmem", [True, False])
def test_truncation_trace_prints_in_kernel_order(shmem):
    """Truncation's trace names each function before the pages it frees: no free_folio precedes the unmap that caused it."""
    k = Kernel()
    f = k.open("m", 2, shmem=shmem)
    p = k.spawn()
    m = p.mmap(2, file=f)
    p.read(m, 1)
    p.write(m, b"private copy")                 # a COW copy that the first unmap frees
    mark = len(k.trace)
    f.truncate(0)
    funcs = [e.func for e in k.trace[mark:]]
    first_free = funcs.index("free_folio")
    assert "unmap_mapping_range" in funcs[:first_free]
