"""Page migration: moving a page's contents to a new frame (mm/migrate.c).

migrate_pages() isolates each folio (one reference), unmaps it through an
rmap walk into migration entries (try_to_migrate()), checks that nobody
but the page cache and the isolation holds a reference
(folio_expected_ref_count()), copies, and remaps every entry to the new
folio (remove_migration_ptes()), carrying PageAnonExclusive in the entry
type.  A pinned or otherwise referenced folio fails with -EAGAIN and stays
where it is.
"""

from dataclasses import dataclass, field

from .folio import folio_expected_ref_count, folio_maybe_dma_pinned
from .memory import folio_put
from .mm import MigrationEntry, Pte
from .rmap import (folio_add_anon_rmap_pte, folio_add_file_rmap_pte, folio_remove_rmap_pte,
                   folio_try_share_anon_rmap_pte, rmap_vmas, rmap_walk)

__all__ = ["MigrateResult", "migrate_pages", "NR_MAX_MIGRATE_PAGES_RETRY"]

#: mm/migrate.c: NR_MAX_MIGRATE_PAGES_RETRY; the model's failures are
#: deterministic, so retries change nothing and are only reported.
NR_MAX_MIGRATE_PAGES_RETRY = 10


@dataclass
class MigrateResult:
    """What migrate_pages() did.

    Attributes
    ----------
    migrated, failed : int
        Folio counts (``nr_succeeded`` and the folios left on the list).
    reasons : dict
        address -> ``"migrated: pfn 7 -> 12"`` or ``"EAGAIN: pinned ..."``.
    rmap_steps : int
        VMAs the rmap walks visited (unmap plus remap).
    """

    migrated: int = 0
    failed: int = 0
    reasons: dict = field(default_factory=dict)
    rmap_steps: int = 0


def try_to_migrate(k, folio):
    """mm/rmap.c: try_to_migrate() / try_to_migrate_one(): replace every PTE
    mapping ``folio`` by a migration entry.

    An exclusive anon page must first lose PageAnonExclusive
    (folio_try_share_anon_rmap_pte()); when it may be pinned that fails and
    the walk stops with the PTE restored.  Returns (ok, steps).
    """
    failed = []

    def one(vma, addr):
        mm = vma.mm
        pte = mm.pte(addr)
        if failed:
            return
        exclusive = folio.anon and folio.anon_exclusive
        if exclusive and not folio_try_share_anon_rmap_pte(folio):
            failed.append(addr)
            k.trace.emit("try_to_migrate_one", "restore PTE, stop",
                         f"PageAnonExclusive page may be pinned (refcount {folio.refcount})", folio.pfn)
            return
        kind = "writable" if pte.write else "readable_exclusive" if exclusive else "readable"
        mm.set_pte(addr, MigrationEntry(folio, kind, pte.dirty))
        folio_remove_rmap_pte(k, folio, vma)
        folio_put(k, folio)
        k.trace.emit("try_to_migrate_one", f"{kind} migration entry", f"at {addr:#x}", folio.pfn)

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


def migrate_pages(k, folios):
    """mm/migrate.c: migrate_pages() for a list of (addr, folio).

    Per folio, in the kernel's order: isolate (+1 reference); unmap only
    if folio_mapped() -- an unmapped folio skips both rmap walks; then
    __migrate_folio(): refcount must equal folio_expected_ref_count() + 1,
    else -EAGAIN; copy; remap; drop the isolation reference.
    """
    res = MigrateResult()
    emit = k.trace.emit
    for addr, folio in folios:
        if folio.zero:
            res.failed += 1
            res.reasons[addr] = "EBUSY: the zero page is not on the LRU and cannot be isolated"
            emit("migrate_pages", "skip", "zero page cannot be isolated", folio.pfn)
            continue
        folio.refcount += 1                      # isolation reference
        emit("folio_isolate_lru", "isolated", f"refcount +1 -> {folio.refcount}", folio.pfn)
        was_mapped = folio.mapcount > 0
        vmas = rmap_vmas(folio)
        if was_mapped:
            ok, steps = try_to_migrate(k, folio)
            res.rmap_steps += steps
            if not ok:
                res.rmap_steps += remove_migration_ptes(k, vmas, folio, folio)
                res.failed += 1
                res.reasons[addr] = (f"EAGAIN: pinned (PageAnonExclusive page may be pinned, refcount "
                                     f"{folio.refcount}); gave up after {NR_MAX_MIGRATE_PAGES_RETRY} passes")
                folio_put(k, folio)                  # putback: drop the isolation reference
                continue
        else:
            emit("migrate_folio_unmap", "skip rmap walk", "folio not mapped (folio_mapped() false)", folio.pfn)
        expected = folio_expected_ref_count(folio) + 1
        if folio.refcount != expected:
            why = (f"refcount {folio.refcount} != expected {expected}"
                   + (" (maybe pinned)" if folio_maybe_dma_pinned(folio) else " (extra reference: GUP, pipe...)"))
            emit("__migrate_folio", "EAGAIN", why, folio.pfn)
            if was_mapped:
                res.rmap_steps += remove_migration_ptes(k, vmas, folio, folio)
            folio_put(k, folio)
            res.failed += 1
            res.reasons[addr] = f"EAGAIN: {why}; gave up after {NR_MAX_MIGRATE_PAGES_RETRY} passes"
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
        emit("__migrate_folio", f"copied to new page {new.pfn}", f"refcount {expected} as expected", folio.pfn)
        if was_mapped:
            res.rmap_steps += remove_migration_ptes(k, vmas, folio, new)
        if not cached:
            new.refcount -= 1                        # allocation reference: the PTEs hold it now
            if new.refcount == 0:
                k.free_folio(new)
        folio_put(k, folio)                          # isolation reference: old page freed
        res.migrated += 1
        res.reasons[addr] = f"migrated: pfn {folio.pfn} -> {new.pfn}"
    return res
