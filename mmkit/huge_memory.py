"""Large anonymous folios: PMD THP and mTHP (mm/huge_memory.c, and the
large-folio parts of mm/memory.c).

What the model does, with the kernel function that does it:

* **first touch** -- a write fault on an empty entry of a private anon VMA
  asks :meth:`mmkit.thp.ThpPolicy.orders` which orders are allowed
  (thp_vma_allowable_orders()).  PMD order first, when the PMD slot has no
  page table (pmd_none()) and the aligned 2 MiB lies inside the VMA
  (__handle_mm_fault() -> create_huge_pmd() -> do_huge_pmd_anonymous_page());
  else the highest mTHP order whose aligned range fits the VMA and whose
  PTEs are all empty (do_anonymous_page() -> alloc_anon_folio(), v6.8);
  else a 4 KiB page.  A read fault where the PMD may be mapped maps the
  **huge zero folio** read-only by one PMD (use_zero_page 1, the default),
  or allocates a THP like a write (use_zero_page 0); anywhere else a read
  maps the 4 KiB zero page.
* **the huge zero folio** (mm/huge_memory.c: mm_get_huge_zero_folio(),
  set_huge_zero_folio(), is_huge_zero_pmd()) -- 512 pages of zeros mapped
  by special read-only PMDs: no rmap, no mapcount, no reference per
  mapping, like the 4 KiB zero page (:class:`HugeZeroFolio`).  fork copies
  the PMD (copy_huge_pmd()), a zap just clears it (zap_huge_pmd()), a
  split maps 512 zero-page PTEs (__split_huge_zero_page_pmd()), mprotect()
  never makes it writable (can_change_pmd_writable(): not anon), and a
  write or unshare fault replaces it (era rule ``huge_zero_wp``).
* **COW** -- do_huge_pmd_wp_page() on a read-only PMD (era rule
  ``thp_cow``), the PTE-level reuse test for a page of a large folio (era
  rule ``large_reuse``), and wp_page_copy() of a single 4 KiB page.
* **fork** -- copy_huge_pmd() (a maybe-pinned THP: split the PMD, -EAGAIN,
  the copy is redone per PTE and every pinned AE page is copied) and the
  per-PTE dup of a PTE-mapped large folio (copy_present_ptes()).
* **splitting** -- __split_huge_pmd() (partial munmap / MADV_DONTNEED /
  mprotect, VMA splits: vma_adjust_trans_huge(), a COW fallback, a pinned
  fork), the deferred split queue and split_folio() (the shrinker's
  deferred_split_scan(): :meth:`mmkit.Kernel.shrink_deferred_split`).

Counters are kept as v6.15+ keeps them (large mapcount, entire mapcount,
per-page mapcounts, ``_nr_pages_mapped``, ``_pincount``, MM-ID slots); older
eras differ in their *decisions* (the era rules), not in this bookkeeping
(v5.x kept ``compound_mapcount`` and PageDoubleMap instead of a large
mapcount).
"""

from .era import kernel_name
from .folio import Folio, ZeroFolio
from .memory import FAULT_FLAG_UNSHARE, wp_page_copy, wp_page_reuse
from .mm import PMD_SIZE, Pmd, Pte
from .pageinfo import PAGE_SIZE
from .rmap import (anon_vma_prepare, folio_add_anon_rmap_pmd, folio_add_anon_rmap_ptes,
                   folio_add_large_mapcount, folio_add_new_large_anon_rmap, folio_move_anon_rmap,
                   folio_remove_rmap_pmd, folio_remove_rmap_ptes)
from .thp import PMD_ORDER

__all__ = ["HugeZeroFolio", "HugeZeroPage", "mm_get_huge_zero_folio", "is_huge_zero_pmd",
           "thp_vma_suitable_order", "do_anonymous_large", "do_huge_pmd_anonymous_page", "alloc_anon_folio",
           "do_huge_pmd_wp_page", "do_wp_large", "wp_can_reuse_large_anon_folio", "copy_huge_pmd",
           "copy_large_pte", "split_huge_pmd", "zap_huge_pmd", "change_huge_pmd", "split_folio",
           "deferred_split_scan"]

_PMD_MASK = ~(PMD_SIZE - 1)
#: HPAGE_PMD_NR
_PMD_NR = 1 << PMD_ORDER


class HugeZeroPage(ZeroFolio):
    """One 4 KiB page of the huge zero folio, what a PMD mapping it shows
    for one address (a :class:`~mmkit.mm.PmdPte`'s ``folio``).

    Like the 4 KiB zero page it is ``zero`` and not counted: PageInfo says
    ``zero_page``, the dump says "zero page", migration skips it.  It is not
    ``large`` (no large-folio counters to show).  Note the kernel's own
    naming: is_zero_folio()/is_zero_pfn() test only the 4 KiB zero page;
    this folio answers is_huge_zero_folio() instead.

    Attributes
    ----------
    folio : HugeZeroFolio
        page_folio().
    i : int
        The page's index in the folio (0: the head).
    """

    __slots__ = ("folio", "i")
    huge_zero = True

    def __init__(self, folio, i):
        super().__init__(folio.pfn + i)
        self.folio = folio
        self.i = i


class HugeZeroFolio(ZeroFolio):
    """The huge zero folio (mm/huge_memory.c: huge_zero_folio): an order-9
    folio of zeros that read faults map by a special, read-only PMD
    (set_huge_zero_folio(): folio_mk_pmd() + pmd_mkspecial(); no
    folio_add_*_rmap(), no folio_get() per mapping -- each mm takes one
    reference for its whole life, mm_get_huge_zero_folio() and
    MMF_HUGE_ZERO_FOLIO, which the model does not show).

    One per model kernel (:func:`mm_get_huge_zero_folio`), allocated at
    the first use with a 2 MiB-aligned pfn; the kernel's is freed by a
    shrinker when no mm uses it and reallocated later (a new pfn), which
    the model does not do.

    GUP: a FOLL_PIN of one of its pages pins the folio in the kernel
    (try_grab_folio(): ``is_zero_folio()`` is true only for the 4 KiB zero
    page, so the huge zero folio gets ``folio_ref_add()`` and
    ``_pincount`` like any large folio, in every era).  The model's GUP
    treats its pages as the zero page (from v6.5 "pin not counted"), which
    changes nothing a user can see; the counting is requested for
    mmkit/gup.py.  move_pages() refuses it with -EFAULT
    (__add_folio_for_migration(): is_huge_zero_folio()), as the model's
    migration does for any zero page.
    """

    __slots__ = ("order", "nr", "pages")
    huge_zero = True

    def __init__(self, pfn):
        super().__init__(pfn)
        self.order = PMD_ORDER
        self.nr = _PMD_NR
        self.pages = [HugeZeroPage(self, i) for i in range(_PMD_NR)]


def mm_get_huge_zero_folio(k):
    """mm/huge_memory.c: mm_get_huge_zero_folio(): the huge zero folio,
    allocated at its first use (get_huge_zero_folio())."""
    hz = getattr(k, "huge_zero_folio", None)
    if hz is None or hz.pfn + _PMD_NR > k._next_pfn:
        # (a restored snapshot from before the allocation hands its pfns out again: allocate anew)
        pfn = (k._next_pfn + _PMD_NR - 1) & ~(_PMD_NR - 1)
        k._next_pfn = pfn + _PMD_NR
        hz = k.huge_zero_folio = HugeZeroFolio(pfn)
        k.trace.emit("get_huge_zero_folio", "huge zero folio allocated",
                     "first use: 512 zeroed pages, never counted per mapping", pfn)
    return hz


def is_huge_zero_pmd(pmd):
    """include/linux/huge_mm.h: is_huge_zero_pmd(): the PMD maps the huge zero folio."""
    return pmd.folio.zero


def thp_vma_suitable_order(vma, addr, order):
    """include/linux/huge_mm.h: thp_vma_suitable_order(): the naturally
    aligned range of ``2**order`` pages around ``addr`` lies inside the VMA
    and the VMA's file offset is aligned alike."""
    nr = 1 << order
    if ((vma.start >> 12) - vma.pgoff) % nr:
        return False
    haddr = addr & ~((nr << 12) - 1)
    return haddr >= vma.start and haddr + (nr << 12) <= vma.end


def do_anonymous_large(k, vma, addr, mask):
    """The large-folio part of a write fault on an empty entry: a PMD THP,
    an mTHP, or None (the caller falls back to a 4 KiB page).  ``mask`` is
    the allowed orders (thp_vma_allowable_orders())."""
    mm = vma.mm
    key = addr >> 21
    if mask >> PMD_ORDER & 1 and key not in mm.pgd and thp_vma_suitable_order(vma, addr, PMD_ORDER):
        return do_huge_pmd_anonymous_page(k, vma, addr)
    mask &= (1 << PMD_ORDER) - 1
    if mask:
        return alloc_anon_folio(k, vma, addr, mask)
    return None


def do_huge_pmd_anonymous_page(k, vma, addr, write=True):
    """mm/huge_memory.c: do_huge_pmd_anonymous_page(), for a fault on an
    empty PMD slot where thp_vma_allowable_order() allows PMD order.

    Returns the entry now at ``addr``, or None for VM_FAULT_FALLBACK (the
    aligned 2 MiB does not fit the VMA, thp_vma_suitable_order(), or the
    slot already has a page table): the caller goes on with the PTE.

    vmf_anon_prepare() first, read or write.  A read fault with
    ``use_zero_page`` 1 maps the huge zero folio (mm_get_huge_zero_folio(),
    set_huge_zero_folio()): a special PMD, read-only (the private VMA's
    vm_page_prot), not dirty, no counter anywhere.  Otherwise -- a write,
    or a read with ``use_zero_page`` 0 -- __do_huge_pmd_anonymous_page() ->
    map_anon_folio_pmd(): a new order-9 folio mapped by one PMD, writable
    and dirty (maybe_pmd_mkwrite(pmd_mkdirty())) even on a read;
    folio_add_new_anon_rmap(RMAP_EXCLUSIVE): entire mapcount 1, large
    mapcount 1, AE on the head page.  The allocation's reference is the
    PMD's: refcount 1.
    """
    mm = vma.mm
    key = addr >> 21
    if key in mm.pgd or not thp_vma_suitable_order(vma, addr, PMD_ORDER):
        return None
    if vma.anon_vma is None:            # vmf_anon_prepare()
        anon_vma_prepare(k, vma)
    if not write and k.thp.use_zero_page:
        zero = mm_get_huge_zero_folio(k)
        pmd = Pmd(zero, False, False)
        mm.pgd[key] = pmd
        k.trace.emit("set_huge_zero_folio", "huge zero folio mapped read-only by one PMD",
                     "read fault, THP allowed here, the PMD is empty and use_zero_page is 1: "
                     "a special PMD, not counted", zero.pfn)
        return pmd[(addr >> 12) & 511]
    folio = k.alloc_large_folio(PMD_ORDER)
    folio_add_new_large_anon_rmap(k, folio, vma, addr & _PMD_MASK, pmd=True)
    pmd = Pmd(folio, vma.write, True)
    mm.pgd[key] = pmd
    k.trace.emit("do_huge_pmd_anonymous_page", "new PMD-mapped THP (order 9)",
                 "write fault, THP allowed here and the PMD is empty" if write else
                 "read fault, THP allowed here, the PMD is empty and use_zero_page is 0: "
                 "a THP mapped writable and dirty", folio.pfn)
    return pmd[(addr >> 12) & 511]


def alloc_anon_folio(k, vma, addr, mask):
    """mm/memory.c: alloc_anon_folio() (v6.8) and the rest of
    do_anonymous_page() for a large folio: "Find the highest order where
    the aligned range is completely pte_none()" among the allowed orders
    that fit the VMA (thp_vma_suitable_orders()); map all its pages with
    set_ptes(), writable and dirty, after folio_ref_add(folio, nr_pages - 1)
    (one reference per PTE).  Returns None when no order fits."""
    mm = vma.mm
    table = mm.pgd.get(addr >> 21)
    for order in range(PMD_ORDER - 1, 1, -1):
        if not mask >> order & 1 or not thp_vma_suitable_order(vma, addr, order):
            continue
        nr = 1 << order
        i0 = (addr >> 12) & 511 & ~(nr - 1)
        if table is not None and any(table[i0:i0 + nr]):
            continue
        break
    else:
        return None
    if vma.anon_vma is None:
        anon_vma_prepare(k, vma)
    base = addr & ~((nr << 12) - 1)
    folio = k.alloc_large_folio(order)
    folio.refcount += nr - 1
    folio_add_new_large_anon_rmap(k, folio, vma, base, pmd=False)
    if table is None:
        table = mm.pgd[addr >> 21] = [None] * 512
    w = vma.write
    for j, page in enumerate(folio.pages):
        table[i0 + j] = Pte(page, w, True)
    k.trace.emit("alloc_anon_folio", f"new {nr * 4} KiB mTHP (order {order}) mapped by {nr} PTEs",
                 "write fault; the highest allowed order whose PTEs are all empty", folio.pfn)
    return table[(addr >> 12) & 511]


# -- COW ---------------------------------------------------------------------

def _max_page_mapcount(folio):
    """mm/swapfile.c: page_trans_huge_map_swapcount() (no swap): the highest
    mapcount of any page of the folio, PMD mappings included."""
    return max(p.pte_mapcount for p in folio.pages) + folio.entire_mapcount


def do_huge_pmd_wp_page(k, vma, addr, pmd, unshare):
    """mm/huge_memory.c: do_huge_pmd_wp_page(): a write (or unshare) fault
    on a read-only PMD.

    Returns True when the fault was handled at PMD level (reuse, or the
    v5.7 huge copy), False after __split_huge_pmd() (VM_FAULT_FALLBACK: the
    caller redoes the fault on the 4 KiB PTE).  See ``Era.thp_cow``.
    """
    if is_huge_zero_pmd(pmd):
        return do_huge_zero_wp_pmd(k, vma, addr, pmd, unshare)
    folio = pmd.folio
    head = folio.pages[0]
    era, emit = k.era, k.trace.emit
    rule = era.thp_cow
    reuse = False
    if rule == "split_exclusive":
        if era.anon_exclusive and head.anon_exclusive:
            emit("do_huge_pmd_wp_page", "reuse the PMD", "head page PageAnonExclusive", folio.pfn)
            reuse = True
        elif folio.refcount == 1:
            if era.reuse_moves_anon_rmap:
                folio_move_anon_rmap(k, folio, vma)
            if era.anon_exclusive:
                head.anon_exclusive = True
            emit("do_huge_pmd_wp_page", "reuse the PMD", "refcount 1: our PMD is the only user"
                 + ("; set PageAnonExclusive on the head" if era.anon_exclusive else ""), folio.pfn)
            reuse = True
        else:
            emit("do_huge_pmd_wp_page", "__split_huge_pmd, VM_FAULT_FALLBACK",
                 "not exclusive: refcount {} > 1", folio.pfn, folio.refcount)
    else:
        m = _max_page_mapcount(folio)
        if m <= 1:
            emit("do_huge_pmd_wp_page", "reuse the PMD", "reuse_swap_page(): no page mapped more than once",
                 folio.pfn)
            reuse = True
        elif rule == "copy_huge":
            emit("do_huge_pmd_wp_page", "copy the whole THP", "reuse_swap_page(): a page is mapped {} times",
                 folio.pfn, m)
            _copy_huge(k, vma, addr, pmd)
            return True
        else:
            emit("do_huge_pmd_wp_page", "__split_huge_pmd, VM_FAULT_FALLBACK",
                 "reuse_swap_page(): a page is mapped {} times (3917c80280c9, v5.8)", folio.pfn, m)
    if reuse:
        if unshare:
            emit("do_huge_pmd_wp_page", "done: PMD stays read-only", "unshare fault only needs an exclusive folio",
                 folio.pfn)
        else:
            pmd.write = vma.write
            pmd.dirty = True
        return True
    split_huge_pmd(k, vma, addr)
    return False


def do_huge_zero_wp_pmd(k, vma, addr, pmd, unshare):
    """A write or unshare fault on a PMD mapping the huge zero folio
    (``Era.huge_zero_wp``).  Returns True when a new THP replaced it,
    False after __split_huge_pmd() (VM_FAULT_FALLBACK: 512 zero-page PTEs,
    the fault is redone on the 4 KiB PTE).

    * ``"thp"`` -- mm/huge_memory.c: do_huge_zero_wp_pmd() (1ced09e0331f,
      v6.13): vma_alloc_anon_folio_pmd() (zeroed), pmdp_huge_clear_flush(),
      map_anon_folio_pmd(): writable (maybe_pmd_mkwrite()) and dirty,
      RMAP_EXCLUSIVE -- for an unshare fault too.  The model's allocation
      never fails, so the split fallback is not taken.
    * ``"split"`` -- v5.8 to v6.12: ``if (is_huge_zero_pmd(orig_pmd)) goto
      fallback;``.
    * ``"thp_if_enabled"`` -- up to v5.7: ``goto alloc``: a THP cleared by
      clear_huge_page() when __transparent_hugepage_enabled(vma), else
      split_huge_pmd() and VM_FAULT_FALLBACK.
    """
    rule = k.era.huge_zero_wp
    emit = k.trace.emit
    zero = pmd.folio
    what = "unshare" if unshare else "write"
    if rule == "split" or (rule == "thp_if_enabled" and not k.thp.orders(vma) >> PMD_ORDER & 1):
        emit("do_huge_pmd_wp_page", "__split_huge_pmd, VM_FAULT_FALLBACK",
             f"{what} fault on the huge zero folio: " + (
                 "is_huge_zero_pmd() goto fallback (v5.8-v6.12, 3917c80280c9)" if rule == "split" else
                 "THP not enabled for this VMA, no huge page to allocate"), zero.pfn)
        split_huge_pmd(k, vma, addr)
        return False
    if vma.anon_vma is None:
        anon_vma_prepare(k, vma)
    new = k.alloc_large_folio(PMD_ORDER)
    folio_add_new_large_anon_rmap(k, new, vma, addr & _PMD_MASK, pmd=True)
    vma.mm.pgd[addr >> 21] = Pmd(new, vma.write, True)
    emit("do_huge_zero_wp_pmd" if rule == "thp" else "do_huge_pmd_wp_page",
         f"new THP {new.pfn} mapped writable by the PMD",
         f"{what} fault on the huge zero folio: a zeroed THP replaces it" + (
             " (1ced09e0331f, v6.13)" if rule == "thp" else " (clear_huge_page(), before v5.8)"), new.pfn)
    return True


def _copy_huge(k, vma, addr, pmd):
    """v5.7 do_huge_pmd_wp_page(): alloc_hugepage_vma() and copy all 512
    pages (copy_user_huge_page()) into a new THP mapped writable."""
    old = pmd.folio
    new = k.alloc_large_folio(PMD_ORDER, [p.data for p in old.pages])
    folio_add_new_large_anon_rmap(k, new, vma, addr & _PMD_MASK, pmd=True)
    vma.mm.pgd[addr >> 21] = Pmd(new, vma.write, True)
    folio_remove_rmap_pmd(k, old, vma)
    _put(k, old, 1)
    k.trace.emit("do_huge_pmd_wp_page", f"new THP {new.pfn} mapped writable", "copied 512 pages from THP {0}",
                 new.pfn, old.pfn)


def do_wp_large(k, vma, addr, pte, flags):
    """mm/memory.c: do_wp_page() for a page of a large anon folio.  A PMD
    goes to do_huge_pmd_wp_page() first; after a split fallback the fault
    is redone on the PTE.  A PageAnonExclusive page is reused; otherwise
    :func:`wp_can_reuse_large_anon_folio` decides, and reuse sets AE on
    *this page only* and makes only this PTE writable; else the one 4 KiB
    page is copied (wp_page_copy()).  Returns the entry now at ``addr``."""
    unshare = flags & FAULT_FLAG_UNSHARE
    mm = vma.mm
    if pte.huge:
        if do_huge_pmd_wp_page(k, vma, addr, pte.pmd, unshare):
            return mm.pte(addr)
        pte = mm.pte(addr)
    page = pte.folio
    folio = page.folio
    era, emit = k.era, k.trace.emit
    if era.anon_exclusive and page.anon_exclusive:
        emit("do_wp_page", "reuse", "PageAnonExclusive set on this page of a large folio", page.pfn)
    elif wp_can_reuse_large_anon_folio(k, folio, vma, page):
        if era.anon_exclusive:
            page.anon_exclusive = True
    else:
        wp_page_copy(k, vma, addr, pte, unshare)
        return mm.pte(addr)
    if unshare:
        emit("do_wp_page", "done: PTE stays read-only", "unshare fault only needs an exclusive page", page.pfn)
    else:
        wp_page_reuse(k, vma, pte)
    return pte


def wp_can_reuse_large_anon_folio(k, folio, vma, page):
    """May a write fault reuse a (non-AE) page of a PTE-mapped large folio?
    (``Era.large_reuse``)

    * ``"mm_id"`` -- mm/memory.c: __wp_can_reuse_large_anon_folio() (v6.15):
      no if the large mapcount is <= 1 ("Let's just free up a large folio if
      only a single page is mapped"), no if FOLIO_MM_IDS_SHARED_BIT is set,
      no if the large mapcount differs from the refcount (a non-mapping
      reference: pin, GUP, pipe); else the folio is exclusive to this mm.
    * ``"never"`` -- wp_can_reuse_anon_folio() after "mm: prohibit the last
      subpage from reusing the entire large folio" (Barry Song, cd197c3a2040, v6.9) and
      before v6.15: a large folio is never reused.
    * ``"refcount"`` -- from v5.9 (do_wp_page(); wp_can_reuse_anon_folio()
      from v6.7) until that patch: reuse iff page_count() of the page, the
      folio's refcount, is 1.
    * ``"mapcount"`` -- up to v5.8, reuse_swap_page() ->
      page_trans_huge_map_swapcount(): reuse iff no page of the folio is
      mapped more than once.
    """
    era, emit = k.era, k.trace.emit
    rule = era.large_reuse
    fn = kernel_name(era, "__wp_can_reuse_large_anon_folio")
    if rule == "mm_id":
        if folio.large_mapcount <= 1:
            emit(fn, "no reuse", "large mapcount {}: copy the one page so the large folio can be freed",
                 page.pfn, folio.large_mapcount)
            return False
        if folio.mm_ids_shared:
            emit(fn, "no reuse", "FOLIO_MM_IDS_SHARED set: maybe mapped by another mm", page.pfn)
            return False
        if folio.large_mapcount != folio.refcount:
            emit(fn, "no reuse", "large mapcount {} != refcount {}: a reference that is not a mapping",
                 page.pfn, folio.large_mapcount, folio.refcount)
            return False
        emit(fn, "reuse", "only this mm maps the folio and every reference is a mapping "
             "(large mapcount {} == refcount); set AE on this page", page.pfn, folio.large_mapcount)
        return True
    if rule == "never":
        emit(fn, "no reuse", "large folio: subpages are never reused", page.pfn)
        return False
    if rule == "refcount":
        if folio.refcount != 1:
            emit(fn, "no reuse", "page_count() {} > 1 (the folio's refcount)", page.pfn, folio.refcount)
            return False
        emit(fn, "reuse", "page_count() 1: this PTE is the folio's only user", page.pfn)
        if era.reuse_moves_anon_rmap:
            folio_move_anon_rmap(k, folio, vma)
        return True
    m = _max_page_mapcount(folio)
    if m > 1:
        emit(fn, "no reuse", "page_trans_huge_map_swapcount() {} > 1", page.pfn, m)
        return False
    emit(fn, "reuse", "no page of the folio is mapped more than once", page.pfn)
    if folio.large_mapcount == 1 and era.reuse_moves_anon_rmap:
        folio_move_anon_rmap(k, folio, vma)
    return True


# -- fork ----------------------------------------------------------------------

def _fork_must_copy(k, src_mm, folio, ae):
    """The fork-time "maybe pinned" test on a large folio: MMF_HAS_PINNED and
    ``_pincount`` > 0 (folio_needs_cow_for_dma(), v5.19; 5.9-5.18:
    has_pinned and page_maybe_dma_pinned(), which reads the compound
    pincount), refused only for an AE page where AE exists."""
    era = k.era
    return era.fork_copies_maybe_pinned and src_mm.has_pinned and folio.pincount > 0 \
        and (ae or not era.anon_exclusive)


def copy_huge_pmd(k, dst_vma, src_vma, key):
    """mm/huge_memory.c: copy_huge_pmd(): fork of one PMD mapping.

    A huge zero PMD is copied as it is, read-only, without counters
    (is_huge_zero_pmd(): mm_get_huge_zero_folio(dst_mm), goto out_zero_page).
    A maybe-pinned THP whose head is AE (v5.19: folio_try_dup_anon_rmap_pmd()
    returns -EBUSY; v5.9-v5.18: d042035eaf5f "mm/thp: Split huge pmds/puds
    if they're pinned when fork()") has its PMD split in the parent and the
    copy returns -EAGAIN: copy_pte_range() redoes it per PTE.  Otherwise the
    child gets the same folio (folio_get(), entire and large mapcount +1,
    AE cleared on the head), and both PMDs are write-protected.

    Returns True when shared, False after the split.
    """
    src_mm = src_vma.mm
    pmd = src_mm.pgd[key]
    folio = pmd.folio
    if is_huge_zero_pmd(pmd):
        # mm_get_huge_zero_folio(dst_mm) "just takes a reference" for the
        # child's mm; goto out_zero_page: both PMDs write-protected
        pmd.write = False
        dst_vma.mm.pgd[key] = Pmd(folio, False, pmd.dirty)
        k.trace.emit("copy_huge_pmd", "copy the huge zero PMD", "is_huge_zero_pmd(): special, no counters",
                     folio.pfn)
        return True
    head = folio.pages[0]
    era = k.era
    if _fork_must_copy(k, src_mm, folio, head.anon_exclusive):
        k.trace.emit("copy_huge_pmd", "__split_huge_pmd, -EAGAIN: copy per PTE",
                     "parent mm has pinned and the THP has _pincount {}", folio.pfn, folio.pincount)
        split_huge_pmd(k, src_vma, key << 21)
        return False
    folio.refcount += 1
    head.anon_exclusive = False
    folio.entire_mapcount += 1
    folio_add_large_mapcount(k, folio, 1, dst_vma.mm)
    if k.rmap_observer is not None:
        k.rmap_observer("map", folio, dst_vma)
    pmd.write = False
    dst_vma.mm.pgd[key] = Pmd(folio, False, pmd.dirty)
    k.trace.emit("copy_huge_pmd", "share the THP, write-protect both PMDs",
                 kernel_name(era, "folio_try_dup_anon_rmap_pmd") + "(): refcount {}, entire mapcount {}",
                 folio.pfn, folio.refcount, folio.entire_mapcount)
    return True


def copy_large_pte(k, src_vma, dst_vma, e, page):
    """mm/memory.c: copy_present_ptes() for a PTE mapping a page of a large
    anon folio: folio_try_dup_anon_rmap_ptes() -- -EBUSY for a maybe-pinned
    AE page, which the caller then copies (copy_present_page()); otherwise
    clear the page's AE, one more reference and one more mapping (the
    page's ``_mapcount``, the large mapcount, the child's MM slot).
    Returns False when the page must be copied."""
    folio = page.folio
    if _fork_must_copy(k, src_vma.mm, folio, page.anon_exclusive):
        return False
    page.anon_exclusive = False
    folio.refcount += 1
    if k.page_mapcount:
        page.pte_mapcount += 1
    folio_add_large_mapcount(k, folio, 1, dst_vma.mm)
    if k.rmap_observer is not None:
        k.rmap_observer("map", page, dst_vma)
    return True


# -- splitting, zapping, protection ------------------------------------------------

def split_huge_pmd(k, vma, addr):
    """mm/huge_memory.c: __split_huge_pmd() -> __split_huge_pmd_locked() for
    an anon THP: a PTE table of 512 entries with the PMD's write and dirty
    bits replaces the PMD; folio_ref_add(folio, HPAGE_PMD_NR - 1) and
    folio_add_anon_rmap_ptes() -- with RMAP_EXCLUSIVE (AE on every page)
    when the head page was AE -- then folio_remove_rmap_pmd().  The folio
    is now PTE-mapped; a later unmap of some of its PTEs queues it for
    deferred split.  A huge zero PMD becomes 512 read-only PTEs of the 4 KiB
    zero page instead (__split_huge_zero_page_pmd()), nothing counted."""
    mm = vma.mm
    key = addr >> 21
    pmd = mm.pgd[key]
    folio = pmd.folio
    if is_huge_zero_pmd(pmd):
        # __split_huge_pmd_locked() -> __split_huge_zero_page_pmd(): "We are
        # going from a zero huge page write protected to zero small page
        # also write protected": pte_mkspecial(pfn_pte(my_zero_pfn(addr), ...))
        zero = k.zero_page
        mm.pgd[key] = [Pte(zero, False, False) for _ in range(_PMD_NR)]
        k.trace.emit("__split_huge_zero_page_pmd", "huge zero PMD -> 512 zero-page PTEs",
                     "special PTEs of the 4 KiB zero page, read-only, not counted", zero.pfn)
        return
    exclusive = folio.pages[0].anon_exclusive
    folio.refcount += folio.nr - 1
    folio_add_anon_rmap_ptes(k, folio, 0, folio.nr, vma, exclusive)
    w, d = pmd.write, pmd.dirty
    mm.pgd[key] = [Pte(p, w, d) for p in folio.pages]
    folio_remove_rmap_pmd(k, folio, vma)
    k.trace.emit("__split_huge_pmd", "PMD -> 512 PTEs",
                 "the THP is now PTE-mapped{}".format("; AE on every page" if exclusive else ""), folio.pfn)


def zap_huge_pmd(k, vma, addr):
    """mm/huge_memory.c: zap_huge_pmd(): clear a PMD that the range covers
    whole; folio_remove_rmap_pmd() and the PMD's reference dropped (nothing
    for the huge zero folio)."""
    mm = vma.mm
    pmd = mm.pgd.pop(addr >> 21)
    folio = pmd.folio
    if is_huge_zero_pmd(pmd):           # zap_deposited_table(): nothing to uncount
        k.trace.emit("zap_huge_pmd", "huge zero PMD cleared", "is_huge_zero_pmd(): no rmap, no reference",
                     folio.pfn)
        return
    folio_remove_rmap_pmd(k, folio, vma)
    _put(k, folio, 1)


def _put(k, folio, nr):
    """folio_put_refs()."""
    folio.refcount -= nr
    if folio.refcount == 0:
        k.free_folio(folio)


def change_huge_pmd(k, vma, pmd):
    """mm/huge_memory.c: change_huge_pmd(): mprotect() of a whole PMD.
    Removing write write-protects it; adding write makes it writable
    without a fault only where can_change_pmd_writable() allows (v6.2:
    private anon with the head page AE).  Returns (protected, upgraded)."""
    if not vma.write:
        if pmd.write:
            pmd.write = False
            return 1, 0
        return 0, 0
    if not pmd.write and k.era.mprotect_upgrade == "exclusive" and pmd.folio.pages[0].anon_exclusive:
        pmd.write = True
        return 0, 1
    return 0, 0


def _mappings(k, folio):
    """Every (vma, addr, table, index) whose entry maps a page of ``folio``
    (an rmap walk of its anon_vma: rmap_walk_anon()); PMD mappings are split
    first (unmap_folio(): TTU_SPLIT_HUGE_PMD)."""
    out = []
    if folio.mapping is None:
        return out
    first, last = folio.index, folio.index + folio.nr
    for avc in list(folio.mapping.chains):
        vma = avc.vma
        lo, hi = max(first, vma.pgoff), min(last, vma.pgoff + vma.npages)
        if lo >= hi:
            continue
        mm = vma.mm
        for idx in range(lo, hi):
            addr = vma.vma_address(idx)
            pmd = mm.pmd(addr)
            if pmd is not None and pmd.folio is folio:
                split_huge_pmd(k, vma, addr)
            table = mm.pgd.get(addr >> 21)
            if table is None:
                continue
            i = (addr >> 12) & 511
            e = table[i]
            if e is not None and e.folio.large and e.folio.folio is folio:
                out.append((vma, table, i, e))
    return out


def split_folio(k, folio):
    """mm/huge_memory.c: split_folio() -> __folio_split() for an anon folio.

    can_split_folio(): only when every reference is a mapping (plus the
    caller's), else -EAGAIN -- a pinned or GUP-referenced folio stays whole.
    Then the folio is unmapped (PMDs split), cut into order-0 folios that
    keep their pfns, contents and PageAnonExclusive, and remapped
    (remap_page()); pages no PTE mapped are freed.  Since v6.12 (era rule
    ``split_remaps_zero``) remap_page() passes RMP_USE_SHARED_ZEROPAGE: a
    mapped subpage that holds only zeros gets a special PTE of the shared
    zero page instead (mm/migrate.c: try_to_map_unused_to_zeropage()), and
    is freed with the unmapped ones.  Returns the errno name or None.

    >>> from mmkit import Kernel
    >>> k = Kernel(era="6.18")
    >>> p = k.spawn("P")
    >>> k.thp.set("2048kB", "madvise")
    >>> a = p.mmap(512)
    >>> p.madvise(a, 512, "hugepage")
    >>> p.write(a, b"data")
    >>> p.munmap(a + 256 * 4096, 256)
    >>> k.shrink_deferred_split()
    (1, 0)
    >>> k.page(p, a).order, k.page(p, a + 4096).zero_page
    (0, True)
    """
    emit = k.trace.emit
    fn = kernel_name(k.era, "split_folio")
    if folio.refcount != folio.large_mapcount:
        emit(fn, "-EAGAIN", "can_split_folio(): refcount {} but {} mapping(s): an extra reference",
             folio.pfn, folio.refcount, folio.large_mapcount)
        return "EAGAIN"
    maps = _mappings(k, folio)
    if folio.refcount != len(maps):
        emit(fn, "-EAGAIN", "can_split_folio(): refcount {} but {} mapping(s)",
             folio.pfn, folio.refcount, len(maps))
        return "EAGAIN"
    small = {}
    for page in folio.pages:
        f = Folio(page.pfn, page.data)
        f.refcount = 0
        f.anon = True
        f.mapping = folio.mapping
        f.index = folio.index + page.i
        f.anon_exclusive = page.anon_exclusive
        f.dirty = folio.dirty
        small[page.i] = f
    zero_remap = k.era.split_remaps_zero
    zeroed = 0
    for vma, table, i, e in maps:
        f = small[e.folio.i]
        if zero_remap and not f.data:
            # try_to_map_unused_to_zeropage(): memchr_inv() found no data;
            # pte_mkspecial(pfn_pte(my_zero_pfn(addr), vma->vm_page_prot))
            table[i] = Pte(k.zero_page, False, False)
            zeroed += 1
            continue
        f.refcount += 1
        f.mapcount += 1
        e.folio = f
    if folio.deferred:
        folio.deferred = False
        k.deferred_split.remove(folio)
    kept = [f for f in small.values() if f.refcount]
    k.nr_folios += len(kept) - 1
    if zero_remap:
        emit("try_to_map_unused_to_zeropage", f"{zeroed} PTE(s) now map the shared zero page",
             "remap_page(RMP_USE_SHARED_ZEROPAGE): mapped subpages holding only zeros (v6.12, b1f202060afe)",
             folio.pfn)
    emit(fn, f"{len(kept)} order-0 page(s) kept, {folio.nr - len(kept)} freed",
         "order {0} folio split; unmapped and zero-filled pages return to the allocator" if zero_remap else
         "order {0} folio split; unmapped pages return to the allocator", folio.pfn, folio.order)
    return None


def deferred_split_scan(k):
    """mm/huge_memory.c: deferred_split_scan(), the deferred-split shrinker:
    split every queued folio that is still partially mapped; one that cannot
    be split (pinned, referenced) stays queued.  Returns (split, kept)."""
    done = kept = 0
    for folio in list(k.deferred_split):
        if split_folio(k, folio) is None:
            done += 1
        else:
            kept += 1
    k.trace.emit("deferred_split_scan", f"{done} folio(s) split, {kept} kept", "the deferred split shrinker ran")
    return done, kept
