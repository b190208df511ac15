"""Faults, copy-on-write, zapping and page-table copy at fork (mm/memory.c).

The functions keep the kernel's names and order of thought:
``handle_mm_fault`` -> ``do_anonymous_page`` / ``do_fault`` / ``do_wp_page``
-> ``wp_can_reuse_anon_folio`` -> ``wp_page_reuse`` or ``wp_page_copy``.
Where a rule changed between kernels the era decides (see :mod:`mmkit.era`).
"""

from .era import kernel_name
from .folio import GUP_PIN_COUNTING_BIAS
from .invariants import check_folio
from .mm import Pmd, Pte, is_cow_mapping
from .pageinfo import PAGE_SIZE
from .rmap import (anon_vma_prepare, folio_add_new_anon_rmap, folio_add_file_rmap_pte,
                   folio_remove_rmap_pte, folio_remove_rmap_ptes, folio_move_anon_rmap, folio_try_dup_anon_rmap_pte)

__all__ = ["FAULT_FLAG_WRITE", "FAULT_FLAG_UNSHARE", "handle_mm_fault", "handle_pte_fault", "do_anonymous_page",
           "do_fault", "do_wp_page", "wp_can_reuse_anon_folio", "wp_page_reuse", "wp_page_copy",
           "zap_pte_range", "unmap_mapping_range", "copy_page_range", "folio_put"]

FAULT_FLAG_WRITE = 1
FAULT_FLAG_UNSHARE = 2
#: copy_page_range() records one event per PTE for this many PTEs of a VMA,
#: then a summary: a lecture's fork shows every decision, a 1 GiB fork stays cheap.
TRACE_PTES_PER_VMA = 64
#: mm/memory.c: fault_around_bytes (64 KiB) in pages.
FAULT_AROUND_PAGES = 16


def folio_put(k, folio):
    """include/linux/mm.h: folio_put(): drop one reference; free at zero."""
    folio.refcount -= 1
    if folio.refcount == 0:
        k.free_folio(folio)


def handle_mm_fault(k, vma, addr, flags):
    """mm/memory.c: handle_mm_fault() -> handle_pte_fault().

    Returns the PTE now at ``addr`` (the kernel returns a vm_fault_t; the
    model hands back the entry so the access need not walk the table again).

    The caller (the access, or GUP's faultin_page()) has already checked the
    VMA's permissions.  An empty PTE goes to do_anonymous_page() or
    do_fault(); a present read-only PTE with FAULT_FLAG_WRITE or
    FAULT_FLAG_UNSHARE goes to do_wp_page().  sanitize_fault_flags() drops
    UNSHARE on mappings that are not COW mappings.
    """
    return handle_pte_fault(k, vma, addr, vma.mm.pte(addr), flags)


def handle_pte_fault(k, vma, addr, pte, flags):
    """mm/memory.c: handle_pte_fault(): the fault on the entry ``pte`` (None
    when empty) that __handle_mm_fault() found by walking the page table.
    A user access that has just walked the table itself calls this directly."""
    if flags & FAULT_FLAG_UNSHARE and not is_cow_mapping(vma):
        k.trace.emit("sanitize_fault_flags", "drop FAULT_FLAG_UNSHARE", "not a COW mapping")
        flags &= ~FAULT_FLAG_UNSHARE
    if pte is None:
        if vma.file is None:
            return do_anonymous_page(k, vma, addr, flags)
        return do_fault(k, vma, addr, flags)
    if flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE):
        if not pte.write:
            new = do_wp_page(k, vma, addr, pte, flags)
            if new is not None:         # a large folio's fault may have split the PMD or copied
                return new
        elif flags & FAULT_FLAG_WRITE:
            pte.dirty = True
        else:
            k.trace.emit("do_wp_page", "nothing to do", "unshare fault on a writable PTE", pte.folio.pfn)
    return pte


def do_anonymous_page(k, vma, addr, flags):
    """mm/memory.c: do_anonymous_page(): first touch of private anon memory.

    A read maps the shared zero page with a special read-only PTE (no
    refcount, no mapcount, no anon_vma).  A write allocates a fresh page,
    adds it with RMAP_EXCLUSIVE and maps it writable and dirty -- or, where
    the THP policy allows a large order here, a PMD THP or an mTHP
    (:func:`mmkit.huge_memory.do_anonymous_large`).

    Where the policy allows PMD order, __handle_mm_fault() tries the PMD
    first for a read too (create_huge_pmd() ->
    do_huge_pmd_anonymous_page()): the huge zero folio, or a THP when
    ``k.thp.use_zero_page`` is 0 (:func:`mmkit.huge_memory.do_huge_pmd_anonymous_page`).
    A read never allocates an mTHP: do_anonymous_page() maps the zero page
    first ("Use the zero-page for reads").
    """
    mm = vma.mm
    thp = k.thp
    if thp.always_mask or vma.hugepage and thp.madvise_mask:
        mask = thp.orders(vma)
        if mask:
            if flags & FAULT_FLAG_WRITE:
                e = _hm.do_anonymous_large(k, vma, addr, mask)
            elif mask >> _hm.PMD_ORDER & 1:
                e = _hm.do_huge_pmd_anonymous_page(k, vma, addr, write=False)
            else:
                e = None
            if e is not None:
                return e
    if not flags & FAULT_FLAG_WRITE:
        zero = k.zero_page
        pte = Pte(zero, False, False)
        mm.set_pte(addr, pte)
        k.trace.emit("do_anonymous_page", "map the shared zero page", "read fault on an empty PTE", zero.pfn)
        return pte
    if vma.anon_vma is None:            # vmf_anon_prepare()
        anon_vma_prepare(k, vma)
    folio = k.alloc_folio()
    folio_add_new_anon_rmap(k, folio, vma, addr)
    pte = Pte(folio, vma.write, True)
    mm.set_pte(addr, pte)
    k.trace.emit("do_anonymous_page", "new exclusive page, mapped writable",
                 "write fault on an empty PTE", folio.pfn)
    return pte


def do_fault(k, vma, addr, flags):
    """mm/memory.c: do_fault(): first touch of a file mapping.

    A read goes to do_read_fault().  A write first gets the page-cache folio
    from the file's fault handler (__do_fault() -> ``vm_ops->fault``:
    filemap_fault(), or shmem_fault() for shmem; SIGBUS beyond EOF).  A
    private write copies it into a new anon page (do_cow_fault()) that is
    mapped instead; a shared write maps the page-cache page writable
    (do_shared_fault()).
    """
    from .filemap import vma_fault
    mm = vma.mm
    if not flags & FAULT_FLAG_WRITE:
        return do_read_fault(k, vma, addr)
    page = vma_fault(k, vma, addr)
    if not vma.shared:
        anon_vma_prepare(k, vma)
        new = k.alloc_folio(page.data)
        folio_add_new_anon_rmap(k, new, vma, addr)
        pte = Pte(new, vma.write, True)
        mm.set_pte(addr, pte)
        k.trace.emit("do_cow_fault", "map a private anon copy of the page-cache page",
                     f"write fault in a private file mapping (page cache pfn {page.pfn} not mapped)", new.pfn)
        return pte
    folio_add_file_rmap_pte(k, page, vma)
    page.dirty = True
    pte = Pte(page, True, True)
    mm.set_pte(addr, pte)
    k.trace.emit("do_shared_fault", "map page-cache page writable",
                 "write fault in a shared mapping (page_mkwrite done)" if not page.mapping.shmem
                 else "write fault in a shared shmem mapping", page.pfn)
    return pte


def _read_fault_writable(vma):
    """The PTE a read fault installs is writable only in a shared writable
    mapping without write notification (shmem); vma->vm_page_prot decides."""
    return vma.shared and vma.write and vma.file.shmem


def do_read_fault(k, vma, addr):
    """mm/memory.c: do_read_fault(): "Let's call ->map_pages() first and use
    ->fault() as fallback if page by the offset is not ready to be mapped".

    do_fault_around() runs first; when it maps the faulting page too (the
    page is in the page cache), the fault is done (VM_FAULT_NOPAGE).  Only
    otherwise does __do_fault() call the file's fault handler
    (filemap_fault() / shmem_fault(), which reads the page in or returns
    SIGBUS beyond EOF) and finish_fault() map the page: read-only in a
    private mapping, and in a shared one whose file needs write
    notification.
    """
    from .filemap import fault_handler_name, vma_fault
    pte = do_fault_around(k, vma, addr)
    if pte is not None:
        return pte
    page = vma_fault(k, vma, addr)
    folio_add_file_rmap_pte(k, page, vma)
    writable = _read_fault_writable(vma)
    pte = Pte(page, writable, False)
    vma.mm.set_pte(addr, pte)
    why = ("private mapping: read-only until a write COWs" if not vma.shared else
           "shmem needs no write notification" if writable else
           "shared file mapping with write notification: read-only until the first write")
    k.trace.emit("do_read_fault", f"map page-cache page {'writable' if writable else 'read-only'}",
                 f"{fault_handler_name(vma.file)}() brought the page; {why}", page.pfn)
    return pte


def do_fault_around(k, vma, addr):
    """mm/memory.c: do_fault_around() -> filemap_map_pages() (``vm_ops->map_pages``
    of disk files and shmem alike): on a read fault, map the pages around
    ``addr`` that are already in the page cache, the faulting one included.

    The window is fault_around_bytes (64 KiB, 16 pages) aligned down, clamped
    to the VMA and to one page table; only cached pages within i_size whose
    PTE is empty are mapped, with the VMA's default protection.  Returns the
    faulting page's new PTE when it was mapped (filemap_map_pages() returns
    VM_FAULT_NOPAGE and do_read_fault() is done), else None.
    """
    mm, file = vma.mm, vma.file
    pte_off = (addr >> 12) & 511
    vma_off = (addr - vma.start) >> 12
    from_pte = max(pte_off - pte_off % FAULT_AROUND_PAGES, pte_off - min(pte_off, vma_off))
    to_pte = min(from_pte + FAULT_AROUND_PAGES, 512, pte_off + vma.npages - vma_off)
    writable = _read_fault_writable(vma)
    mapped = 0
    own = None
    base = addr - (pte_off << 12)
    for i in range(from_pte, to_pte):
        a = base + (i << 12)
        if mm.pte(a) is not None:
            continue
        index = vma.linear_page_index(a)
        folio = file.pages.get(index)
        if folio is None or index >= file.npages:
            continue
        folio_add_file_rmap_pte(k, folio, vma)
        pte = Pte(folio, writable, False)
        mm.set_pte(a, pte)
        if a == addr:
            own = pte
        else:
            mapped += 1
    if own is not None:
        k.trace.emit("do_fault_around", "VM_FAULT_NOPAGE: done",
                     "filemap_map_pages() mapped the cached faulting page {1} ({2}) and {0} neighbour(s); "
                     "no ->fault call", own.folio.pfn, mapped, vma.linear_page_index(addr),
                     "writable" if writable else "read-only")
    elif mapped:
        k.trace.emit("do_fault_around", "{} cached neighbour(s) mapped",
                     "filemap_map_pages() around {1:#x}; the faulting page is not cached: ->fault next",
                     None, mapped, addr)
    return own


def do_wp_page(k, vma, addr, pte, flags):
    """mm/memory.c: do_wp_page(): a write (or unshare) fault on a present
    read-only PTE.

    Returns the entry now at ``addr`` when it is not ``pte`` any more (a
    large folio's PMD was replaced or split), else None.

    Shared mappings are not COW: the PTE is made writable (wp_page_shared()).
    In a private mapping an anon page is reused if it is PageAnonExclusive
    (v5.19+) or if wp_can_reuse_anon_folio() says nobody else uses it;
    anything else -- a shared anon page, a page-cache page, the zero page --
    is copied by wp_page_copy().  An unshare fault that may reuse just marks
    the page exclusive and leaves the PTE read-only.
    """
    folio = pte.folio
    unshare = flags & FAULT_FLAG_UNSHARE
    emit = k.trace.emit
    if vma.shared:
        pte.write = True
        pte.dirty = True
        folio.dirty = True
        emit("do_wp_page", "wp_page_shared", "shared mapping: no COW, make the PTE writable", folio.pfn)
        return
    if folio.zero:
        if pte.huge:                    # wp_huge_pmd() -> do_huge_pmd_wp_page(): is_huge_zero_pmd()
            if _hm.do_huge_pmd_wp_page(k, vma, addr, pte.pmd, unshare):
                return vma.mm.pte(addr)
            pte = vma.mm.pte(addr)      # VM_FAULT_FALLBACK: redo the fault on the zero-page PTE
            folio = pte.folio
        emit("do_wp_page", "wp_page_copy", f"{'unshare' if unshare else 'write'} fault on the zero page",
             folio.pfn)
        wp_page_copy(k, vma, addr, pte, unshare)
        return pte
    if not folio.anon:
        emit("do_wp_page", "wp_page_copy", f"{'unshare' if unshare else 'write'} fault on a page-cache page "
             "in a private mapping", folio.pfn)
        return wp_page_copy(k, vma, addr, pte, unshare)
    if folio.large:
        return _hm.do_wp_large(k, vma, addr, pte, flags)
    era = k.era
    if era.anon_exclusive and folio.anon_exclusive:
        emit("do_wp_page", "reuse", "PageAnonExclusive set (refcount {}, mapcount {} not needed)",
             folio.pfn, folio.refcount, folio.mapcount)
    elif wp_can_reuse_anon_folio(k, folio, vma):
        if era.anon_exclusive:
            folio.anon_exclusive = True
        emit("do_wp_page", "reuse", "no one else uses the page; set PageAnonExclusive" if era.anon_exclusive
             else "no one else uses the page", folio.pfn)
    else:
        emit("do_wp_page", "wp_page_copy",
             "page not exclusive" if era.anon_exclusive else "page may be shared", folio.pfn)
        return wp_page_copy(k, vma, addr, pte, unshare)
    if unshare:
        emit("do_wp_page", "done: PTE stays read-only", "unshare fault only needs an exclusive page",
             folio.pfn)
        return
    wp_page_reuse(k, vma, pte)


def wp_can_reuse_anon_folio(k, folio, vma):
    """mm/memory.c: wp_can_reuse_anon_folio() -- may this process reuse a
    non-exclusive anon page instead of copying it?

    ``era.reuse_rule == "refcount"`` (v5.9+, the rule today): reuse iff the
    only reference is our own mapping, refcount == 1.  Any other holder -- a
    second mapping, a pipe buffer, a FOLL_GET, a pin -- forces a copy.  The
    mapcount is not consulted.  (The kernel drains this CPU's LRU batch
    first so that its reference does not count; the model has no LRU
    batches, like a live test pinned to one CPU.)

    ``era.reuse_rule == "mapcount"`` (up to v5.8: do_wp_page() ->
    reuse_swap_page()): reuse iff mapcount == 1, the refcount ignored; a
    page held by a pipe or a GUP reference is reused under the holder's
    feet (CVE-2020-29374).

    On reuse the folio is moved to this VMA's anon_vma
    (folio_move_anon_rmap()), except in 5.9-5.18 (``era.reuse_moves_anon_rmap``).
    (The function has this name since v6.7; from v5.9 the test sat inline
    in do_wp_page(), and the trace says so: :func:`mmkit.era.kernel_name`.)
    """
    era, emit = k.era, k.trace.emit
    if era.reuse_rule == "mapcount":
        if folio.mapcount == 1:
            emit("reuse_swap_page", "reuse", "mapcount 1 (refcount {} not consulted)", folio.pfn, folio.refcount)
            if era.reuse_moves_anon_rmap:
                folio_move_anon_rmap(k, folio, vma)
            return True
        emit("reuse_swap_page", "no reuse", "mapcount {} > 1", folio.pfn, folio.mapcount)
        return False
    fn = era.kernel_names["wp_can_reuse_anon_folio"]
    if folio.refcount != 1:
        emit(fn, "no reuse", "refcount {} > 1 (mapcount {})", folio.pfn, folio.refcount, folio.mapcount)
        return False
    emit(fn, "reuse", "refcount 1: our PTE is the only user", folio.pfn)
    if era.reuse_moves_anon_rmap and folio.mapping is not vma.anon_vma:    # else nothing to move
        folio_move_anon_rmap(k, folio, vma)
    return True


def wp_page_reuse(k, vma, pte):
    """mm/memory.c: wp_page_reuse(): keep the page, make the PTE writable
    (if the VMA allows it) and dirty.  No counter changes."""
    pte.write = vma.write
    pte.dirty = True
    k.trace.emit("wp_page_reuse", "PTE made writable", "", pte.folio.pfn)


def wp_page_copy(k, vma, addr, pte, unshare=False):
    """mm/memory.c: wp_page_copy(): give this process its own copy.

    A new exclusive page (zeroed for the zero page, else a copy) replaces
    the old one in this PTE.  For a write fault it is mapped writable and
    dirty; for an unshare fault (FAULT_FLAG_UNSHARE, v5.19+) it stays
    read-only.  Only after the PTE switch does the old page lose its
    mapping and the PTE's reference.
    """
    old = pte.folio
    if vma.anon_vma is None:            # vmf_anon_prepare()
        anon_vma_prepare(k, vma)
    new = k.alloc_folio(b"" if old.zero else old.data)
    folio_add_new_anon_rmap(k, new, vma, addr)
    pte.folio = new
    pte.write = vma.write and not unshare
    pte.dirty = not unshare
    if not old.zero:
        folio_remove_rmap_pte(k, old, vma)
        old.refcount -= 1               # folio_put(): the old PTE's reference (a large folio's own)
        if old.refcount == 0:
            k.free_folio(old)
    if old.zero:
        k.trace.emit("wp_page_copy", "new page {} mapped {}", "zero-filled instead of copying the zero page",
                     new.pfn, new.pfn, "read-only" if unshare else "writable")
    else:
        k.trace.emit("wp_page_copy", "new page {} mapped {}",
                     "copied from pfn {2}; old page now refcount {3} mapcount {4}", new.pfn, new.pfn,
                     "read-only" if unshare else "writable", old.pfn, old.refcount, old.mapcount)


def zap_pte_range(k, vma, start, end, even_cows=True):
    """mm/memory.c: zap_pte_range(): clear the PTEs of ``[start, end)``.

    Each present page loses its mapping and the PTE's reference (freed at
    zero, unless someone -- a pin, a pipe, the page cache -- still holds
    it).  With ``even_cows=False`` (unmap_mapping_range() for hole punching)
    anon pages in private file mappings are kept (should_zap_folio()).

    Returns the number of PTEs cleared.
    """
    mm = vma.mm
    n = 0
    for base, table, i0, i1 in list(mm.tables(start, end)):
        if type(table) is Pmd:
            if not even_cows and table.folio.anon:
                continue
            if i1 - i0 == 512:          # zap_pmd_range(): the range covers the PMD
                _hm.zap_huge_pmd(k, vma, base)
                n += 512
                continue
            _hm.split_huge_pmd(k, vma, base)            # a part of it: __split_huge_pmd() first
            table = mm.pgd[base >> 21]
        i = i0
        while i < i1:
            e = table[i]
            if e is None:
                i += 1
                continue
            folio = e.folio
            if not even_cows and folio.anon:
                i += 1
                continue
            if folio.large:
                # zap_present_folio_ptes(): a batch of PTEs mapping consecutive pages of one folio
                f, j, nxt = folio.folio, i + 1, folio.i + 1
                while j < i1 and table[j] is not None and table[j].folio.large and table[j].folio.folio is f \
                        and table[j].folio.i == nxt:
                    j += 1
                    nxt += 1
                for x in range(i, j):
                    table[x] = None
                folio_remove_rmap_ptes(k, f, folio.i, j - i, vma)
                n += j - i
                f.refcount -= j - i
                if f.refcount == 0:
                    k.free_folio(f)
                i = j
                continue
            table[i] = None
            i += 1
            n += 1
            if folio.zero:
                continue
            folio_remove_rmap_pte(k, folio, vma)
            folio_put(k, folio)
    return n


def unmap_mapping_range(k, file, first_index, even_cows):
    """mm/memory.c: unmap_mapping_range(): zap every mapping of file pages
    at index >= ``first_index`` in every VMA of the file's i_mmap; with
    ``even_cows`` also the private COW copies of those pages."""
    # said first, so that what the zap frees prints after it, in kernel order
    k.trace.emit("unmap_mapping_range", "zap", f"every PTE of pages from index {first_index} in the file's "
                 f"i_mmap, even_cows={int(even_cows)}")
    total = 0
    for vma in list(file.i_mmap):
        end_index = vma.pgoff + vma.npages
        if end_index <= first_index:
            continue
        start = vma.start + max(0, first_index - vma.pgoff) * PAGE_SIZE
        total += zap_pte_range(k, vma, start, vma.end, even_cows)
    k.trace.emit("unmap_mapping_range", f"{total} PTE(s) zapped", "")
    return total


def copy_page_range(k, dst_vma, src_vma):
    """mm/memory.c: copy_page_range() -> copy_pte_range() -> copy_present_ptes().

    fork's page-table copy for one VMA.  For each present PTE:

    * the zero page (no normal page) is copied as is, no counters;
    * an anon page goes through folio_try_dup_anon_rmap_pte(): shared
      (refcount+1, mapcount+1, PageAnonExclusive cleared), or -- when it may
      be pinned in an mm that pinned (v5.9+) -- copied for the child at once
      by copy_present_page(), the parent keeping its page writable;
    * a page-cache page gets folio_dup_file_rmap_pte() -- except in
      5.9-5.18 (``era.fork_copies_pinned_cache``), where a maybe-pinned
      page-cache page of a COW mapping was copied for the child too;
    * in a COW mapping a writable PTE is write-protected in both processes.

    The per-PTE function is copy_present_ptes() today, copy_present_pte()
    from v5.9 and copy_one_pte() before; the trace uses the era's name.

    Returns (shared, copied) counts.
    """
    src_mm, dst_mm = src_vma.mm, dst_vma.mm
    cow = is_cow_mapping(src_vma)
    trace = k.trace
    check = k.check
    era = k.era
    ae = era.anon_exclusive
    copy_cache = era.fork_copies_pinned_cache and cow and src_mm.has_pinned
    fn = kernel_name(era, "copy_present_ptes")
    shared = copied = 0
    detail = TRACE_PTES_PER_VMA      # per-PTE events for the first PTEs only
    for base, table, i0, i1 in src_mm.tables(src_vma.start, src_vma.end):
        if type(table) is Pmd:
            if _hm.copy_huge_pmd(k, dst_vma, src_vma, base >> 21):
                shared += 1
                if check:
                    check_folio(k, table.folio)
                continue
            table = src_mm.pgd[base >> 21]          # -EAGAIN: split, copy per PTE
        dst_table = None
        for i in range(i0, i1):
            e = table[i]
            if e is None:
                continue
            if dst_table is None:
                dst_table = dst_mm.pgd.setdefault(base >> 21, [None] * 512)
            folio = e.folio
            if folio.large:
                if not _hm.copy_large_pte(k, src_vma, dst_vma, e, folio):
                    copy_present_page(k, dst_vma, base + (i << 12), folio, dst_table, i)
                    copied += 1
                    continue
                if cow:
                    e.write = False
                dst_table[i] = Pte(folio, e.write, e.dirty)
                shared += 1
                if detail > 0:
                    detail -= 1
                    trace.emit(fn, "share a page of a large folio, write-protect both",
                               "folio_try_dup_anon_rmap_ptes(): refcount {}", folio.pfn, folio.refcount)
                continue
            if folio.zero:
                dst_table[i] = Pte(folio, False, False)
                if detail > 0:
                    detail -= 1
                    trace.emit(fn, "copy the zero-page PTE", "special PTE: no counters",
                               folio.pfn)
                continue
            if folio.anon:
                if not folio_try_dup_anon_rmap_pte(k, folio, src_vma, dst_vma):
                    new = copy_present_page(k, dst_vma, base + (i << 12), folio, dst_table, i)
                    copied += 1
                    if check:
                        check_folio(k, folio)
                        check_folio(k, new)
                    continue
                if detail > 0:
                    detail -= 1
                    trace.emit(fn, "share, write-protect both",
                               "not maybe-pinned (refcount {}){}", folio.pfn, folio.refcount - 1,
                               "; clear PageAnonExclusive" if ae else "")
            elif copy_cache and folio.refcount >= GUP_PIN_COUNTING_BIAS:
                # 5.9-5.18: copy_present_page() tested is_cow_mapping(),
                # mm->has_pinned and page_maybe_dma_pinned(), not PageAnon()
                new = copy_present_page(k, dst_vma, base + (i << 12), folio, dst_table, i)
                copied += 1
                if check:
                    check_folio(k, folio)
                    check_folio(k, new)
                continue
            else:
                folio_add_file_rmap_pte(k, folio, dst_vma)
                if detail > 0:
                    detail -= 1
                    trace.emit(fn, "share page-cache page", kernel_name(era, "folio_dup_file_rmap_pte"), folio.pfn)
            if cow:
                e.write = False
            dst_table[i] = Pte(folio, e.write, e.dirty)
            shared += 1
            if check:
                check_folio(k, folio)
    if detail < 0 or shared + copied > TRACE_PTES_PER_VMA:
        trace.emit("copy_pte_range", "{} shared, {} copied in this VMA",
                   "per-PTE events shown for the first {2} only", None, shared, copied, TRACE_PTES_PER_VMA)
    return shared, copied


def copy_present_page(k, dst_vma, addr, folio, dst_table, i):
    """mm/memory.c: copy_present_page(): eager copy of a maybe-pinned page
    at fork (v5.9+).  The child gets a new exclusive anon page, writable if
    the VMA is; the parent keeps the pinned page, still exclusive and
    writable, so the pin stays coherent with the parent.  In 5.9-5.18 the
    page may be a page-cache page of a private mapping (no PageAnon() test
    before v5.19): the child's copy is anon all the same."""
    anon_vma_prepare(k, dst_vma)
    new = k.alloc_folio(folio.data)
    folio_add_new_anon_rmap(k, new, dst_vma, addr)
    dst_table[i] = Pte(new, dst_vma.write, True)
    k.trace.emit("copy_present_page", f"copy for the child (new page {new.pfn})",
                 (f"parent mm has pinned and _pincount {folio.pincount} > 0 (a large folio: maybe pinned)"
                  if folio.large else f"parent mm has pinned and refcount {folio.refcount} >= 1024 (maybe pinned)")
                 + ("" if folio.anon else "; a page-cache page: no PageAnon() test before v5.19"), folio.pfn)
    return new


# at the end: mm/huge_memory.c's model uses the functions above
from . import huge_memory as _hm  # noqa: E402
