"""Invariants: what the kernel guarantees, checked after every operation.

Each invariant has its own exception class with a plain-words explanation.
:func:`check_folio` and :func:`check_pte` are cheap and run on what an
operation touched; :func:`check_kernel` recounts the whole world from the
holders (PTEs, page cache, pins, references, pipes) and walks the rmap, for
tests and for a curious student.
"""

from collections import Counter

from .errors import InvariantViolation
from .folio import GUP_PIN_COUNTING_BIAS
from .rmap import rmap_vmas

__all__ = ["RefcountBelowHolders", "ExclusiveMappedMoreThanOnce", "PinnedAnonNotExclusive",
           "ZeroPageCounted", "UseAfterFree", "WritableSharedAnon", "CountMismatch",
           "RmapUnreachable", "check_folio", "check_pte", "check_kernel", "INVARIANTS"]


class RefcountBelowHolders(InvariantViolation):
    name = "refcount_covers_holders"
    explanation = ("every mapping must be backed by one reference, every pin by 1024 and the page cache "
                   "by one (folio_mapcount() kerneldoc), so refcount >= mapcount + 1024*pins + cache")


class ExclusiveMappedMoreThanOnce(InvariantViolation):
    name = "exclusive_mapped_once"
    explanation = ("PageAnonExclusive means exactly one mm maps the page and it is not shared through "
                   "COW, so an exclusive page has at most one mapping")


class PinnedAnonNotExclusive(InvariantViolation):
    name = "pinned_anon_exclusive"
    explanation = ("since v5.19 a FOLL_PIN'ed anonymous page must be PageAnonExclusive: fork copies "
                   "maybe-pinned exclusive pages instead of sharing them, and R/O pins unshare first")


class ZeroPageCounted(InvariantViolation):
    name = "zero_page_special"
    explanation = ("the shared zero page is mapped by special PTEs that touch no mapcount, and since "
                   "v6.5 it is never pinned")


class UseAfterFree(InvariantViolation):
    name = "no_use_after_free"
    explanation = "a page reachable from a PTE, a pin or a pipe holds a reference, so its refcount is > 0"


class WritableSharedAnon(InvariantViolation):
    name = "writable_anon_is_exclusive"
    explanation = ("a writable PTE to an anonymous page in a private mapping means this process may "
                   "change the page without COW, so nobody else may map it (and, since v5.19, it is "
                   "PageAnonExclusive)")


class CountMismatch(InvariantViolation):
    name = "counts_match_holders"
    explanation = ("the model counts every holder of a page; recounting PTEs, the page cache, pins, "
                   "references and pipe buffers must give exactly the stored refcount and mapcount")


class RmapUnreachable(InvariantViolation):
    name = "rmap_reaches_every_pte"
    explanation = ("an rmap walk (anon_vma chains or the file's i_mmap) must find every PTE that maps "
                   "a page, or migration and truncation would miss it")


INVARIANTS = [RefcountBelowHolders, ExclusiveMappedMoreThanOnce, PinnedAnonNotExclusive, ZeroPageCounted,
              UseAfterFree, WritableSharedAnon, CountMismatch, RmapUnreachable]


def check_folio(k, folio):
    """The cheap per-folio invariants."""
    if folio.zero:
        if folio.mapcount or (folio.pincount and not k.era.zero_page_pinned):
            raise ZeroPageCounted(f"zero page has mapcount {folio.mapcount}, pincount {folio.pincount}")
        return
    cache = 1 if folio.mapping is not None and not folio.anon else 0
    need = folio.mapcount + folio.pincount * GUP_PIN_COUNTING_BIAS + cache
    if folio.refcount < need:
        raise RefcountBelowHolders(f"pfn {folio.pfn}: refcount {folio.refcount} < mapcount {folio.mapcount}"
                                   f" + 1024*{folio.pincount} pins + {cache} cache")
    if folio.anon_exclusive and folio.mapcount > 1:
        raise ExclusiveMappedMoreThanOnce(f"pfn {folio.pfn} is exclusive with mapcount {folio.mapcount}")
    if folio.pincount and folio.anon and not folio.anon_exclusive and k.era.anon_exclusive:
        raise PinnedAnonNotExclusive(f"pfn {folio.pfn} has {folio.pincount} pin(s) but is not exclusive")


def check_pte(k, vma, pte):
    """The cheap per-PTE invariants."""
    folio = pte.folio
    if folio.refcount <= 0 and not folio.zero:
        raise UseAfterFree(f"PTE in {vma} maps freed pfn {folio.pfn}")
    if pte.write and folio.anon and not vma.shared:
        if folio.mapcount != 1 or (not folio.anon_exclusive and k.era.anon_exclusive):
            raise WritableSharedAnon(f"writable PTE to pfn {folio.pfn} with mapcount {folio.mapcount}, "
                                     f"exclusive={folio.anon_exclusive}")
    check_folio(k, folio)


def check_kernel(k):
    """Recount everything and walk the rmap; raise on the first violation."""
    maps, refs, pins, folios = Counter(), Counter(), Counter(), {}
    for task in k.tasks.values():
        if not task.alive:
            continue
        for vma in task.mm.vmas:
            for addr, e in task.mm.ptes(vma.start, vma.end):
                f = e.folio
                folios[id(f)] = f
                if e.present:
                    check_pte(k, vma, e)
                if f.zero:
                    continue
                maps[id(f)] += 1
                refs[id(f)] += 1
                _check_reachable(vma, addr, f)
    for file in k.files.values():
        for f in file.pages.values():
            folios[id(f)] = f
            refs[id(f)] += 1
    for h in k.holders.values():
        if h.released:
            continue
        for f in h.folios():
            folios[id(f)] = f
            if f.zero and h.kind == "pin" and not k.era.zero_page_pinned:
                continue
            if h.kind == "pin":
                refs[id(f)] += GUP_PIN_COUNTING_BIAS
                pins[id(f)] += 1
            else:
                refs[id(f)] += 1
    for key, f in folios.items():
        check_folio(k, f)
        if f.zero:
            continue
        if (f.mapcount, f.refcount, f.pincount) != (maps[key], refs[key], pins[key]):
            raise CountMismatch(f"pfn {f.pfn}: stored map/ref/pin {f.mapcount}/{f.refcount}/{f.pincount}, "
                                f"holders give {maps[key]}/{refs[key]}/{pins[key]}")
    return len(folios)


def _check_reachable(vma, addr, folio):
    if folio.mapping is None:
        raise RmapUnreachable(f"pfn {folio.pfn} is mapped at {addr:#x} but has no mapping")
    reach = rmap_vmas(folio)
    if vma not in reach or vma.vma_address(folio.index) != addr:
        raise RmapUnreachable(f"pfn {folio.pfn} mapped at {addr:#x} in {vma} is not found by its rmap walk")
