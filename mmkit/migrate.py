"""Page migration: moving a page's contents to a new frame (mm/migrate.c).

A caller isolates each folio (one reference) and hands the list to
migrate_pages(), which unmaps it through an rmap walk into migration
entries (try_to_migrate(); try_to_unmap(..., TTU_MIGRATION) before v5.14),
checks that nobody but the page cache and the isolation holds a reference
(folio_expected_ref_count(); expected_page_refs() in v5.x), copies, and
remaps every entry to the new folio (remove_migration_ptes()), carrying
PageAnonExclusive in the entry type.  A pinned or otherwise referenced
folio fails with -EAGAIN, is retried, and stays where it is.

Who asks matters (:data:`CALLERS`):

* **compaction** (mm/compaction.c: isolate_migratepages_block()) never
  isolates an anon folio whose refcount exceeds its mapcount ("Migration
  will fail if an anonymous page is pinned in memory, so avoid taking
  lru_lock and isolating it unnecessarily"): a pinned or spliced anon page
  is *skipped*, not retried.  The zero page is not on the LRU: skipped too.
* **move_pages(2)** (mm/migrate.c: add_folio_for_migration();
  add_page_for_migration() up to v6.8) answers per page: no VMA -EFAULT, no
  page -ENOENT, the zero page -EFAULT (is_zero_folio()); without
  MPOL_MF_MOVE_ALL a page mapped by more than one process -EACCES
  (folio_maybe_mapped_shared(); page_mapcount() > 1 in v5.10).  Everything
  else is isolated without any refcount test and migrated with
  MIGRATE_SYNC, MR_SYSCALL.
* **memory offlining** (mm/memory_hotplug.c: do_migrate_range()) isolates
  every LRU folio of the range (isolate_folio_to_list()) and migrates with
  MIGRATE_SYNC, MR_MEMORY_HOTPLUG; offline_pages() calls it again until
  nothing movable is left or a signal arrives (-EINTR, "signal backoff").

Retries (``era.migrate_batch``): up to v6.2 each of NR_MAX_MIGRATE_PAGES_RETRY
(10) passes ran unmap_and_move() -> __unmap_and_move(): unmap, try, restore.
Since v6.3 migrate_pages_batch() unmaps once and retries only the move, so a
folio whose refcount check fails stays behind migration entries between
passes (a task touching it waits in migration_entry_wait()); synchronous
callers (move_pages, offlining) get NR_MAX_MIGRATE_ASYNC_RETRY (3) batched
passes, then NR_MAX_MIGRATE_SYNC_RETRY (7) one by one (migrate_pages_sync()),
an asynchronous one (compaction) 10.  The model's failures are deterministic:
every pass fails like the first, so the model runs one attempt, reports the
passes (:attr:`MigrateResult.passes`, :attr:`MigrateResult.unmap_cycles`)
and shows them in the trace.
"""

from dataclasses import dataclass, field

from .era import kernel_name
from .errors import InvalidArgument
from .folio import folio_expected_ref_count, folio_maybe_dma_pinned
from .memory import folio_put
from .mm import MigrationEntry, Pte
from .rmap import (folio_add_anon_rmap_pte, folio_add_file_rmap_pte, folio_remove_rmap_pte,
                   folio_try_share_anon_rmap_pte, rmap_vmas, rmap_walk)

__all__ = ["MigrateResult", "migrate_pages", "migrate_large_folio", "isolate_for_migration", "CALLERS",
           "NR_MAX_MIGRATE_PAGES_RETRY", "NR_MAX_MIGRATE_ASYNC_RETRY", "NR_MAX_MIGRATE_SYNC_RETRY"]

#: mm/migrate.c: passes of migrate_pages() (v5.10: a literal 10 in its loop).
NR_MAX_MIGRATE_PAGES_RETRY = 10
#: mm/migrate.c (v6.3+): batched MIGRATE_ASYNC passes a synchronous caller gets first ...
NR_MAX_MIGRATE_ASYNC_RETRY = 3
#: ... then the passes of the one-by-one fallback in the caller's mode.
NR_MAX_MIGRATE_SYNC_RETRY = NR_MAX_MIGRATE_PAGES_RETRY - NR_MAX_MIGRATE_ASYNC_RETRY

#: caller -> (migrate mode, enum migrate_reason, who in the kernel).
CALLERS = {
    "compaction": ("MIGRATE_ASYNC", "MR_COMPACTION",
                   "compaction (mm/compaction.c: isolate_migratepages_block(), then migrate_pages(); "
                   "direct compaction starts MIGRATE_ASYNC)"),
    "move_pages": ("MIGRATE_SYNC", "MR_SYSCALL", "move_pages(2) with MPOL_MF_MOVE"),
    "move_pages_all": ("MIGRATE_SYNC", "MR_SYSCALL", "move_pages(2) with MPOL_MF_MOVE_ALL (CAP_SYS_NICE)"),
    "offline": ("MIGRATE_SYNC", "MR_MEMORY_HOTPLUG", "memory offlining (mm/memory_hotplug.c: do_migrate_range())"),
}


#: caller -> what happens to a folio that failed all its passes.
GIVE_UP = {
    "compaction": "putback_movable_pages(); compaction goes on with other pages",
    "move_pages": "move_pages() returns the number of pages not migrated (> 0), status[] not written for them",
    "move_pages_all": "move_pages() returns the number of pages not migrated (> 0), status[] not written for them",
    "offline": ("do_migrate_range() puts it back and offline_pages() calls it again, until the holder lets go "
                "or a signal arrives (-EINTR, \"signal backoff\")"),
}


@dataclass
class MigrateResult:
    """What a migration request did.

    Attributes
    ----------
    migrated, failed : int
        Pages moved, and pages not moved (refused, skipped or failed).
    reasons : dict
        address -> ``"migrated: pfn 7 -> 12"``, ``"EAGAIN: pinned ..."``,
        ``"skipped: ..."`` (compaction), ``"EFAULT: ..."``,
        ``"ENOENT: ..."``, ``"EACCES: ..."`` (move_pages)...
    rmap_steps : int
        VMAs the rmap walks of one attempt visited (unmap plus remap); a
        failing folio's retries repeat them (see ``unmap_cycles``).
    reason : str
        The caller (a key of :data:`CALLERS`).
    passes : dict
        address -> migrate_pages() passes spent on the page (1 when it moved
        at once, 10 when -EAGAIN every time).
    unmap_cycles : dict
        address -> how often the page's PTEs were turned into migration
        entries and restored: one per pass up to v6.2; since v6.3 one per
        migrate_pages_batch() call (the folio stays unmapped between passes).
    """

    migrated: int = 0
    failed: int = 0
    reasons: dict = field(default_factory=dict)
    rmap_steps: int = 0
    reason: str = "move_pages_all"
    passes: dict = field(default_factory=dict)
    unmap_cycles: dict = field(default_factory=dict)


def try_to_migrate(k, folio):
    """mm/rmap.c: try_to_migrate() / try_to_migrate_one() (v5.14+; before,
    try_to_unmap(page, TTU_MIGRATION) -> try_to_unmap_one()): replace every
    PTE mapping ``folio`` by a migration entry.

    Since v5.19 an exclusive anon page must first lose PageAnonExclusive
    (folio_try_share_anon_rmap_pte(); page_try_share_anon_rmap() up to
    v6.5); when it may be pinned that fails and the walk stops with the PTE
    restored.  Older kernels have no such step: a pinned page is unmapped
    and fails later, at the refcount check.  Returns (ok, steps).
    """
    failed = []
    era = k.era
    one_name = kernel_name(era, "try_to_migrate_one")

    def one(vma, addr):
        mm = vma.mm
        pte = mm.pte(addr)
        if failed:
            return
        exclusive = folio.anon and folio.anon_exclusive
        if exclusive and not folio_try_share_anon_rmap_pte(folio):
            failed.append(addr)
            k.trace.emit(one_name, "restore PTE, stop",
                         f"{kernel_name(era, 'folio_try_share_anon_rmap_pte')}() fails: PageAnonExclusive "
                         f"page may be pinned (refcount {folio.refcount})", folio.pfn)
            return
        kind = "writable" if pte.write else "readable_exclusive" if exclusive else "readable"
        mm.set_pte(addr, MigrationEntry(folio, kind, pte.dirty))
        folio_remove_rmap_pte(k, folio, vma)
        folio_put(k, folio)
        k.trace.emit(one_name, f"{kind} migration entry", f"at {addr:#x}", folio.pfn)

    steps, _ = rmap_walk(k, folio, one, done=lambda: folio.mapcount == 0 or bool(failed))
    return not failed, steps


def remove_migration_ptes(k, vmas, src, dst):
    """mm/migrate.c: remove_migration_ptes(): turn every migration entry for
    ``src`` in ``vmas`` (the rmap's candidates, taken before the unmap) into
    a PTE for ``dst`` (``dst is src`` to undo).  A writable or
    readable-exclusive entry sets PageAnonExclusive (RMAP_EXCLUSIVE)."""
    for vma in vmas:
        addr = vma.vma_address(src.index)
        e = vma.mm.pte(addr) if addr is not None else None
        if e is None or e.present or e.folio is not src:
            continue
        if dst.anon:
            dst.refcount += 1                        # folio_get()
            folio_add_anon_rmap_pte(k, dst, vma, exclusive=e.kind != "readable")
        else:
            folio_add_file_rmap_pte(k, dst, vma)     # takes the PTE's reference too
        vma.mm.set_pte(addr, Pte(dst, e.kind == "writable", e.dirty))
    k.walk_steps += len(vmas)
    return len(vmas)


def isolate_for_migration(k, reason, mm, addr):
    """What ``reason``'s caller does with the page at ``addr`` of ``mm``
    before migrate_pages(): returns ``(folio, None)`` to isolate it, or
    ``(None, why)`` when the caller refuses or skips it (nothing changes).

    compaction: isolate_migratepages_block() skips non-LRU pages (the zero
    page) and an anon folio with folio_ref_count() - 1 > folio_mapcount()
    (its own temporary reference excluded) -- a pin, a pipe buffer, a
    FOLL_GET.  The test is present in v5.10 (page_count() > page_mapcount()
    before the reference was taken) and in [LN].

    move_pages: add_folio_for_migration(): vma_lookup() fails -> -EFAULT; no
    folio -> -ENOENT; is_zero_folio() -> -EFAULT; mapped by more than one
    process without MPOL_MF_MOVE_ALL -> -EACCES.

    offline: do_migrate_range() isolates any LRU folio; the zero page is a
    reserved kernel page: offline_pages() fails to isolate its range
    (start_isolate_page_range() -> has_unmovable_pages() finds
    PageReserved(), -EBUSY "failure to isolate range").
    """
    if reason not in CALLERS:
        raise InvalidArgument(f"unknown migration caller {reason!r}; callers are {', '.join(CALLERS)}")
    e = mm.pte(addr)
    if reason in ("move_pages", "move_pages_all"):
        fn = kernel_name(k.era, "add_folio_for_migration")
        if mm.find_vma(addr) is None:
            k.trace.emit(fn, "-EFAULT", f"no VMA covers {addr:#x}")
            return None, f"EFAULT: no VMA covers {addr:#x} ({fn}())"
        if e is None or not e.present:
            k.trace.emit(fn, "-ENOENT", f"no page mapped at {addr:#x}")
            return None, f"ENOENT: the VMA has no page at {addr:#x} ({fn}())"
    elif e is None or not e.present:
        return None, f"skipped: no page mapped at {addr:#x}"
    if e.folio.large:
        return e.folio, None            # the whole folio is handled once: migrate_large_folio()
    why = _caller_isolates(k, reason, e.folio)
    return (None, why) if why else (e.folio, None)


def _caller_isolates(k, reason, folio):
    """The caller's own tests on ``folio`` before it isolates it: None when
    it isolates (the isolation event is emitted), else why not."""
    era = k.era
    emit = k.trace.emit
    if reason in ("move_pages", "move_pages_all"):
        fn = kernel_name(era, "add_folio_for_migration")
        if folio.zero:
            how = ("is_zero_folio() in __add_folio_for_migration()" if fn == "add_folio_for_migration" else
                   "follow_page(FOLL_GET | FOLL_DUMP) refuses special pages like the zero page")
            emit(fn, "-EFAULT", f"the shared zero page is never migrated: {how}", folio.pfn)
            return f"EFAULT: the shared zero page ({how})"
        if reason == "move_pages" and folio.mapcount > 1:
            emit(fn, "-EACCES", f"mapped by {folio.mapcount} PTEs and no MPOL_MF_MOVE_ALL", folio.pfn)
            return (f"EACCES: mapped by more than one process (mapcount {folio.mapcount}); "
                    "only MPOL_MF_MOVE_ALL moves it")
        emit(kernel_name(era, "folio_isolate_lru"), "isolated", f"refcount +1 -> {folio.refcount + 1}", folio.pfn)
        return None
    if reason == "compaction":
        if folio.zero:
            emit("isolate_migratepages_block", "skip", "not an LRU page: the shared zero page", folio.pfn)
            return "skipped: the shared zero page is not on the LRU (isolate_migratepages_block())"
        if folio.anon and folio.refcount > folio.mapcount:
            why = (f"anon page with refcount {folio.refcount} > mapcount {folio.mapcount}: "
                   "\"Migration will fail if an anonymous page is pinned in memory\"")
            emit("isolate_migratepages_block", "skip, not isolated", why, folio.pfn)
            return (f"skipped: {why} (isolate_migratepages_block() does not isolate it; "
                    "no migration attempt, no retry)")
        emit("isolate_migratepages_block", "isolated", f"refcount +1 -> {folio.refcount + 1}", folio.pfn)
        return None
    # offline
    if folio.zero:
        emit("offline_pages", "-EBUSY", "the zero page is PageReserved(): failure to isolate range", folio.pfn)
        return ("EBUSY: the shared zero page is a reserved kernel page; offline_pages() cannot isolate "
                "its range (has_unmovable_pages())")
    emit(kernel_name(era, "isolate_folio_to_list"), "isolated", f"refcount +1 -> {folio.refcount + 1}", folio.pfn)
    return None


def _retry_story(k, reason, at_unmap, was_mapped=True):
    """(passes, unmap cycles, text) of a folio that fails every pass."""
    mode = CALLERS[reason][0]
    sync = mode != "MIGRATE_ASYNC"
    split = (f" ({NR_MAX_MIGRATE_ASYNC_RETRY} batched + {NR_MAX_MIGRATE_SYNC_RETRY} one by one)"
             if sync and k.era.migrate_batch else "")
    if not was_mapped:
        return (NR_MAX_MIGRATE_PAGES_RETRY, 0,
                f"gave up after {NR_MAX_MIGRATE_PAGES_RETRY} passes{split} (no PTEs to unmap)")
    if not k.era.migrate_batch:
        return (NR_MAX_MIGRATE_PAGES_RETRY, NR_MAX_MIGRATE_PAGES_RETRY,
                f"gave up after {NR_MAX_MIGRATE_PAGES_RETRY} passes, each unmapping and restoring the PTEs "
                "(unmap_and_move())")
    if at_unmap:
        return (NR_MAX_MIGRATE_PAGES_RETRY, NR_MAX_MIGRATE_PAGES_RETRY,
                f"gave up after {NR_MAX_MIGRATE_PAGES_RETRY} passes{split}; migrate_folio_unmap() restored "
                "the PTEs at once each time")
    if sync:
        return (NR_MAX_MIGRATE_PAGES_RETRY, 2,
                f"gave up after {NR_MAX_MIGRATE_ASYNC_RETRY} + {NR_MAX_MIGRATE_SYNC_RETRY} passes; the page "
                "stayed unmapped behind migration entries during each batch (migrate_pages_batch())")
    return (NR_MAX_MIGRATE_PAGES_RETRY, 1,
            f"gave up after {NR_MAX_MIGRATE_PAGES_RETRY} passes; the page stayed unmapped behind migration "
            "entries between them (migrate_pages_batch())")


def _emit_retries(k, folio, reason, at_unmap, was_mapped):
    """The passes a deterministic failure goes through, as trace events."""
    emit = k.trace.emit
    mode = CALLERS[reason][0]
    if not was_mapped:
        emit("migrate_pages", "-EAGAIN: retry", "{0} passes; the folio has no PTEs to unmap", folio.pfn,
             NR_MAX_MIGRATE_PAGES_RETRY)
        return
    if not k.era.migrate_batch:
        emit("migrate_pages", "-EAGAIN: retry",
             "{0} passes (NR_MAX_MIGRATE_PAGES_RETRY), each calling unmap_and_move() again: unmap, try, restore",
             folio.pfn, NR_MAX_MIGRATE_PAGES_RETRY)
        return
    if at_unmap:
        emit("migrate_pages_batch", "-EAGAIN: retry the unmap",
             "{0} passes; the PTEs are restored after each (migrate_folio_undo_src())", folio.pfn,
             NR_MAX_MIGRATE_PAGES_RETRY)
        return
    first = NR_MAX_MIGRATE_ASYNC_RETRY if mode != "MIGRATE_ASYNC" else NR_MAX_MIGRATE_PAGES_RETRY
    emit("migrate_pages_batch", "-EAGAIN: folio stays unmapped, retry the move",
         "{0} move passes behind migration entries; a task touching the page waits in "
         "migration_entry_wait()", folio.pfn, first)
    emit("migrate_folios_undo", "PTEs restored", "passes used up", folio.pfn)
    if mode != "MIGRATE_ASYNC":
        emit("migrate_pages_sync", "retry one by one in {1}",
             "unmap again, {0} more move passes behind migration entries (NR_MAX_MIGRATE_SYNC_RETRY)",
             folio.pfn, NR_MAX_MIGRATE_SYNC_RETRY, mode)
        emit("migrate_folios_undo", "PTEs restored", "passes used up", folio.pfn)


def migrate_pages(k, folios, reason="move_pages_all", isolated=False):
    """mm/migrate.c: migrate_pages() for a list of (addr, folio).

    Per folio, in the kernel's order: isolate (+1 reference) after the
    caller's own tests (compaction's pre-check, move_pages()'s zero page
    and -EACCES, offlining's reserved zero page) unless the caller did that
    already (``isolated``); unmap only if folio_mapped() -- an
    unmapped folio skips both rmap walks; then the refcount check
    (__migrate_folio(); folio_migrate_mapping() / migrate_page_move_mapping()
    in older kernels): refcount must equal folio_expected_ref_count() + 1,
    else -EAGAIN; copy; remap; drop the isolation reference.  A failure is
    retried as the era does (see the module docstring) and the folio put
    back.  ``reason`` names the caller (:data:`CALLERS`).
    """
    if reason not in CALLERS:
        raise InvalidArgument(f"unknown migration caller {reason!r}; callers are {', '.join(CALLERS)}")
    res = MigrateResult(reason=reason)
    era = k.era
    emit = k.trace.emit
    check_fn = kernel_name(era, "__migrate_folio")
    expected_fn = kernel_name(era, "folio_expected_ref_count")
    unmap_fn = kernel_name(era, "migrate_folio_unmap")
    large = {}
    for addr, folio in folios:
        if folio.large:
            large.setdefault(id(folio.folio), (folio.folio, []))[1].append(addr)
    done_large = set()
    for addr, folio in folios:
        if folio.large:
            f = folio.folio
            if id(f) not in done_large:
                done_large.add(id(f))
                migrate_large_folio(k, reason, f, large[id(f)][1], res)
            continue
        if not isolated:
            why = _caller_isolates(k, reason, folio)
            if why:
                res.failed += 1
                res.reasons[addr] = why
                continue
        folio.refcount += 1                      # isolation reference
        was_mapped = folio.mapcount > 0
        vmas = rmap_vmas(folio)
        if was_mapped:
            ok, steps = try_to_migrate(k, folio)
            res.rmap_steps += steps
            if not ok:
                res.rmap_steps += remove_migration_ptes(k, vmas, folio, folio)
                emit(unmap_fn, "-EAGAIN", "folio still mapped: PTEs restored", folio.pfn)
                _emit_retries(k, folio, reason, True, was_mapped)
                passes, cycles, story = _retry_story(k, reason, True)
                res.failed += 1
                res.passes[addr], res.unmap_cycles[addr] = passes, cycles
                res.reasons[addr] = (f"EAGAIN: pinned (PageAnonExclusive page may be pinned, refcount "
                                     f"{folio.refcount}); {story}; {GIVE_UP[reason]}")
                folio_put(k, folio)                  # putback: drop the isolation reference
                continue
        else:
            emit(unmap_fn, "skip rmap walk", "folio not mapped (folio_mapped() false)", folio.pfn)
        expected = folio_expected_ref_count(folio) + 1
        if folio.refcount != expected:
            why = (f"refcount {folio.refcount} != expected {expected}"
                   + (" (maybe pinned)" if folio_maybe_dma_pinned(folio) else " (extra reference: GUP, pipe...)"))
            emit(check_fn, "-EAGAIN", f"{why}; {expected_fn}() + 1 for the isolation", folio.pfn)
            _emit_retries(k, folio, reason, False, was_mapped)
            if was_mapped:
                res.rmap_steps += remove_migration_ptes(k, vmas, folio, folio)
            folio_put(k, folio)
            passes, cycles, story = _retry_story(k, reason, False, was_mapped)
            res.failed += 1
            res.passes[addr], res.unmap_cycles[addr] = passes, cycles
            res.reasons[addr] = f"EAGAIN: {why}; {story}; {GIVE_UP[reason]}"
            continue
        new = k.alloc_folio(folio.data)
        new.anon, new.mapping, new.index, new.dirty = folio.anon, folio.mapping, folio.index, folio.dirty
        cached = not folio.anon and folio.mapping is not None
        if cached:
            # __folio_migrate_mapping(): the xarray slot now holds the new
            # folio, whose allocation reference becomes the cache's.
            folio.mapping.pages[folio.index] = new
            folio.refcount -= 1
            folio.mapping = None
        elif not was_mapped and folio.anon_exclusive:
            new.anon_exclusive = True                # folio_migrate_flags(): AE of an unmapped page
        emit(check_fn, f"copied to new page {new.pfn}", f"refcount {expected} as expected", folio.pfn)
        if was_mapped:
            res.rmap_steps += remove_migration_ptes(k, vmas, folio, new)
        if not cached:
            new.refcount -= 1                        # allocation reference: the PTEs hold it now
            if new.refcount == 0:
                k.free_folio(new)
        folio_put(k, folio)                          # isolation reference: old page freed
        res.migrated += 1
        res.passes[addr], res.unmap_cycles[addr] = 1, 1 if was_mapped else 0
        res.reasons[addr] = f"migrated: pfn {folio.pfn} -> {new.pfn}"
    return res


def migrate_large_folio(k, reason, folio, addrs, res):
    """Migrate a large anon folio whole (x86-64 has THP migration,
    thp_migration_supported()): the caller's tests as for a small folio --
    compaction skips an anon folio with more references than mappings,
    move_pages(2) without MPOL_MF_MOVE_ALL refuses one that
    folio_maybe_mapped_shared() (v6.15; page_mapcount() > 1 of the page
    asked about before) -- then isolation, unmap (PMD migration entries for a
    PMD mapping, set_pmd_migration_entry()), the refcount check and the
    copy into a new folio of the same order, remapped as it was mapped (PMD
    or PTEs) with each page's PageAnonExclusive carried by its migration
    entry.  A folio that may be pinned fails with -EAGAIN like a small one:
    folio_try_share_anon_rmap_*() refuses an AE page while ``_pincount`` >
    0 (v5.19), and in any era the refcount check finds the pin.

    Not modelled: the split-and-retry that migrate_pages_batch() does when
    a large folio cannot be allocated (-ENOMEM) or migration is unsupported;
    the retry passes of a failing large folio are reported as for a small
    one.  Every address of the folio in the request gets the folio's
    outcome; ``migrated``/``failed`` count those addresses.
    """
    from .rmap import folio_maybe_mapped_shared
    era, emit = k.era, k.trace.emit
    n = len(addrs)
    what = f"order-{folio.order} folio"

    def fail(why):
        res.failed += n
        for a in addrs:
            res.reasons[a] = why
            res.passes[a], res.unmap_cycles[a] = 1, 0

    if reason == "move_pages":
        page = folio.pages[0]
        shared = folio_maybe_mapped_shared(folio) if era.mm_id else page.mapcount > 1
        if shared:
            emit(kernel_name(era, "add_folio_for_migration"), "-EACCES",
                 f"{what} maybe mapped shared and no MPOL_MF_MOVE_ALL", folio.pfn)
            return fail("EACCES: the large folio is mapped by more than one process; only MPOL_MF_MOVE_ALL moves it")
    if reason == "compaction" and folio.refcount > folio.large_mapcount:
        why = (f"anon {what} with refcount {folio.refcount} > mapcount {folio.large_mapcount}: "
               "\"Migration will fail if an anonymous page is pinned in memory\"")
        emit("isolate_migratepages_block", "skip, not isolated", why, folio.pfn)
        return fail(f"skipped: {why} (isolate_migratepages_block())")
    if folio.pincount or folio.refcount != folio.large_mapcount:
        why = (f"{what} may be pinned (_pincount {folio.pincount})" if folio.pincount else
               f"{what} has refcount {folio.refcount} but {folio.large_mapcount} mapping(s) (GUP, pipe...)")
        emit(kernel_name(era, "migrate_folio_unmap") if folio.pincount and era.anon_exclusive
             else kernel_name(era, "__migrate_folio"), "-EAGAIN", why, folio.pfn)
        passes, cycles, story = _retry_story(k, reason, bool(folio.pincount and era.anon_exclusive))
        res.failed += n
        for a in addrs:
            res.reasons[a] = f"EAGAIN: {why}; {story}; {GIVE_UP[reason]}"
            res.passes[a], res.unmap_cycles[a] = passes, cycles
        return
    pmds = []
    for vma in rmap_vmas(folio.pages[0]):
        addr = vma.vma_address(folio.index)
        pmd = vma.mm.pmd(addr) if addr is not None else None
        if pmd is not None and pmd.folio is folio:
            pmds.append((vma, addr, pmd))
    only_pmds = len(pmds) == folio.large_mapcount
    new = k.alloc_large_folio(folio.order, [p.data for p in folio.pages])
    for attr in ("refcount", "large_mapcount", "entire_mapcount", "nr_pages_mapped", "anon", "mapping",
                 "index", "dirty", "mm_ids_shared"):
        setattr(new, attr, getattr(folio, attr))
    new.mm_id, new.mm_id_mapcount = list(folio.mm_id), list(folio.mm_id_mapcount)
    for p, q in zip(folio.pages, new.pages):
        q.pte_mapcount, q.anon_exclusive = p.pte_mapcount, p.anon_exclusive
    steps = 0
    for vma, addr, pmd in pmds:
        vma.mm.pgd[addr >> 21] = type(pmd)(new, pmd.write, pmd.dirty)
        steps += 1
    if not only_pmds:
        first, last = folio.index, folio.index + folio.nr
        for avc in folio.mapping.chains:
            vma = avc.vma
            steps += 1
            for idx in range(max(first, vma.pgoff), min(last, vma.pgoff + vma.npages)):
                e = vma.mm.pte(vma.vma_address(idx))
                if e is not None and not e.huge and e.folio.large and e.folio.folio is folio:
                    e.folio = new.pages[e.folio.i]
    if folio.deferred:
        k.deferred_split[k.deferred_split.index(folio)] = new
        new.deferred, folio.deferred = True, False
    folio.refcount = 0
    k.free_folio(folio)
    res.rmap_steps += 2 * steps
    res.migrated += n
    emit(kernel_name(era, "__migrate_folio"), f"copied to new {what} {new.pfn}",
         f"refcount {new.refcount + 1} as expected; remapped as it was mapped "
         f"({'PMD' if pmds else 'PTEs'})", folio.pfn)
    for a in addrs:
        res.reasons[a] = f"migrated: {what} pfn {folio.pfn} -> {new.pfn}"
        res.passes[a], res.unmap_cycles[a] = 1, 1
