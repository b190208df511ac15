"""Invariants: what the kernel guarantees, checked after every operation.

Each invariant has its own exception class with a plain-words explanation.
:func:`check_folio` and :func:`check_pte` are cheap and run on what an
operation touched; :func:`check_kernel` recounts the whole world from the
holders (PTEs, page cache, pins, references, pipes) and walks the rmap, for
tests and for a curious student.
"""

from collections import Counter

from .errors import InvariantViolation
from .folio import GUP_PIN_COUNTING_BIAS, MM_ID_DUMMY
from .mm import Pmd
from .rmap import rmap_vmas

__all__ = ["LargeMapcountMismatch", "MmIdSlotMismatch", "PincountMismatch", "check_large_folio",
           "RefcountBelowHolders", "ExclusiveMappedMoreThanOnce", "PinnedAnonNotExclusive",
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


class LargeMapcountMismatch(InvariantViolation):
    name = "large_mapcount_sums"
    explanation = ("a large folio's large mapcount counts every PTE and PMD mapping it: with per-page "
                   "mapcounts (CONFIG_PAGE_MAPCOUNT) it equals the sum of the pages' own mapcounts plus the "
                   "entire (PMD) mapcount, and _nr_pages_mapped counts the pages with a PTE mapping "
                   "(mm/rmap.c: __folio_add_rmap())")


class MmIdSlotMismatch(InvariantViolation):
    name = "mm_id_slots_match_mappers"
    explanation = ("each MM slot of a large folio (v6.15, CONFIG_MM_ID) counts at most the mappings its mm "
                   "has of the folio (fewer only if the mm mapped it while no slot was free), and a folio not "
                   "marked 'maybe mapped shared' has all its mappings in one slot "
                   "(include/linux/rmap.h: folio_add_return_large_mapcount())")


class PincountMismatch(InvariantViolation):
    name = "pincount_matches_pins"
    explanation = ("a large folio counts its FOLL_PIN pins in _pincount (one per pin, and one reference "
                   "each), so _pincount equals the pins held on its pages")


INVARIANTS = [RefcountBelowHolders, ExclusiveMappedMoreThanOnce, PinnedAnonNotExclusive, ZeroPageCounted,
              UseAfterFree, WritableSharedAnon, CountMismatch, RmapUnreachable, LargeMapcountMismatch,
              MmIdSlotMismatch, PincountMismatch]


def check_large_folio(k, folio, full=False):
    """The per-folio invariants of a large folio: O(1) ones after every
    operation; with ``full`` (:func:`check_kernel`) also the sum of the
    pages' mapcounts, which costs one step per page."""
    if folio.refcount < folio.large_mapcount + folio.pincount:
        raise RefcountBelowHolders(f"pfn {folio.pfn} (order {folio.order}): refcount {folio.refcount} < "
                                   f"large mapcount {folio.large_mapcount} + {folio.pincount} pin(s)")
    if folio.entire_mapcount > folio.large_mapcount or folio.nr_pages_mapped > folio.nr:
        raise LargeMapcountMismatch(f"pfn {folio.pfn}: entire mapcount {folio.entire_mapcount}, large mapcount "
                                    f"{folio.large_mapcount}, _nr_pages_mapped {folio.nr_pages_mapped}")
    if full and k.page_mapcount:
        ptes = 0
        mapped = 0
        for p in folio.pages:
            ptes += p.pte_mapcount
            mapped += p.pte_mapcount > 0
        if ptes + folio.entire_mapcount != folio.large_mapcount or mapped != folio.nr_pages_mapped:
            raise LargeMapcountMismatch(f"pfn {folio.pfn}: pages' mapcounts {ptes} + entire "
                                        f"{folio.entire_mapcount} != large mapcount {folio.large_mapcount}, or "
                                        f"{mapped} mapped pages != _nr_pages_mapped {folio.nr_pages_mapped}")
    if k.era.mm_id and folio.large_mapcount:
        slots = sum(c + 1 for c in folio.mm_id_mapcount)
        if slots > folio.large_mapcount or (not folio.mm_ids_shared and
                                            folio.large_mapcount - 1 not in folio.mm_id_mapcount):
            raise MmIdSlotMismatch(f"pfn {folio.pfn}: slots {folio.mm_id}/{folio.mm_id_mapcount}, shared="
                                   f"{folio.mm_ids_shared}, large mapcount {folio.large_mapcount}")


def check_folio(k, folio):
    """The cheap per-folio invariants."""
    if folio.large:
        return check_large_folio(k, folio.folio)
    _check_small_folio(k, folio)


def _check_small_folio(k, folio):
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
    if folio.large:
        return _check_large_pte(k, vma, pte, folio)
    if folio.refcount <= 0 and not folio.zero:
        raise UseAfterFree(f"PTE in {vma} maps freed pfn {folio.pfn}")
    if pte.write and folio.anon and not vma.shared:
        if folio.mapcount != 1 or (not folio.anon_exclusive and k.era.anon_exclusive):
            raise WritableSharedAnon(f"writable PTE to pfn {folio.pfn} with mapcount {folio.mapcount}, "
                                     f"exclusive={folio.anon_exclusive}")
    _check_small_folio(k, folio)


def _check_large_pte(k, vma, pte, page):
    folio = page.folio
    if folio.refcount <= 0:
        raise UseAfterFree(f"entry in {vma} maps freed pfn {page.pfn}")
    if pte.write and not vma.shared:
        if pte.huge:
            head = folio.pages[0]
            if folio.large_mapcount != 1 or (k.era.anon_exclusive and not head.anon_exclusive):
                raise WritableSharedAnon(f"writable PMD to THP {folio.pfn} with large mapcount "
                                         f"{folio.large_mapcount}, head exclusive={head.anon_exclusive}")
        elif (k.page_mapcount and page.mapcount != 1) or (k.era.anon_exclusive and not page.anon_exclusive):
            raise WritableSharedAnon(f"writable PTE to pfn {page.pfn} (a page of a large folio) with mapcount "
                                     f"{page.mapcount}, exclusive={page.anon_exclusive}")
    check_large_folio(k, folio)


def check_kernel(k):
    """Recount everything and walk the rmap; raise on the first violation."""
    maps, refs, pins, folios = Counter(), Counter(), Counter(), {}
    large = {}                 # id(folio) -> [folio, pte maps per page, pmd maps, maps per mm_id]
    pinned_pages = []
    for task in k.tasks.values():
        if not task.alive:
            continue
        for vma in task.mm.vmas:
            for base, table, i0, i1 in task.mm.tables(vma.start, vma.end):
                if type(table) is not Pmd:
                    continue
                f = table.folio
                if f.zero:          # the huge zero folio: a special PMD, no rmap, not counted (is_huge_zero_pmd())
                    continue
                rec = large.setdefault(id(f), [f, Counter(), 0, Counter()])
                rec[2] += 1
                rec[3][task.mm.mm_id] += 1
                refs[id(f)] += 1
                if table.write and not vma.shared:
                    check_pte(k, vma, table[0])
                _check_reachable(vma, base, f.pages[0])
            for addr, e in task.mm.ptes(vma.start, vma.end):
                if e.huge:
                    continue
                if e.folio.large:
                    page = e.folio
                    f = page.folio
                    rec = large.setdefault(id(f), [f, Counter(), 0, Counter()])
                    rec[1][page.i] += 1
                    rec[3][task.mm.mm_id] += 1
                    refs[id(f)] += 1
                    if e.present:
                        check_pte(k, vma, e)
                    _check_reachable(vma, addr, page)
                    continue
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
            if f.large:
                lf = f.folio
                large.setdefault(id(lf), [lf, Counter(), 0, Counter()])
                refs[id(lf)] += 1
                if h.kind == "pin":
                    pins[id(lf)] += 1
                    pinned_pages.append(f)
                continue
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
    for page in pinned_pages:
        # a pinned page that is mapped is exclusive: its own AE for a PTE
        # mapping, the head's for a PMD mapping (AE lives on the head then)
        f, per_page, pmds, _ = large[id(page.folio)]
        if k.era.anon_exclusive and ((per_page[page.i] and not page.anon_exclusive) or
                                     (pmds and not f.pages[0].anon_exclusive)):
            raise PinnedAnonNotExclusive(f"pfn {page.pfn} (a page of a large folio) is pinned and mapped but "
                                         "not exclusive")
    for key, (f, per_page, pmds, per_mm) in large.items():
        check_large_folio(k, f, full=True)
        if f.pincount != pins[key]:
            raise PincountMismatch(f"pfn {f.pfn}: _pincount {f.pincount}, pins held {pins[key]}")
        nmaps = sum(per_page.values()) + pmds
        if (f.large_mapcount, f.entire_mapcount, f.refcount) != (nmaps, pmds, refs[key]):
            raise CountMismatch(f"pfn {f.pfn} (order {f.order}): stored large/entire/ref "
                                f"{f.large_mapcount}/{f.entire_mapcount}/{f.refcount}, holders give "
                                f"{nmaps}/{pmds}/{refs[key]}")
        if k.page_mapcount:
            for p in f.pages:
                if p.pte_mapcount != per_page[p.i]:
                    raise LargeMapcountMismatch(f"pfn {p.pfn}: page mapcount {p.pte_mapcount}, "
                                                f"PTEs mapping it {per_page[p.i]}")
        if k.era.mm_id:
            # a slot may count fewer mappings than its mm has: "some mappings
            # added when no slot was free, some mappings added once a slot
            # was free" (folio_sub_return_large_mapcount()); never more
            for mid, c in zip(f.mm_id, f.mm_id_mapcount):
                if mid != MM_ID_DUMMY and c + 1 > per_mm[mid]:
                    raise MmIdSlotMismatch(f"pfn {f.pfn}: MM slot {mid} counts {c + 1} mapping(s), "
                                           f"that mm has {per_mm[mid]}")
            if not f.mm_ids_shared and len(per_mm) > 1:
                raise MmIdSlotMismatch(f"pfn {f.pfn}: mapped by {len(per_mm)} mms but not marked maybe shared")
    return len(folios) + len(large)


def _check_reachable(vma, addr, folio):
    if folio.mapping is None:
        raise RmapUnreachable(f"pfn {folio.pfn} is mapped at {addr:#x} but has no mapping")
    reach = rmap_vmas(folio)
    if vma not in reach or vma.vma_address(folio.index) != addr:
        raise RmapUnreachable(f"pfn {folio.pfn} mapped at {addr:#x} in {vma} is not found by its rmap walk")
