"""Reverse mapping: from a folio back to the PTEs that map it (mm/rmap.c).

Anonymous folios point to an :class:`AnonVma`; every VMA that may map pages
of that anon_vma is linked to it by an :class:`AnonVmaChain`.  fork() links
the child's VMA into every anon_vma of the parent's chain (anon_vma_clone())
and gives it an anon_vma of its own for the pages it will create
(anon_vma_fork()).  File folios are found through the file's ``i_mmap``,
the set of VMAs mapping the file.

:func:`rmap_walk` visits those VMAs and counts its steps, which is what
migration and truncation pay for every mapped page.
"""


from .era import kernel_name
from .folio import GUP_PIN_COUNTING_BIAS, MM_ID_DUMMY, folio_maybe_dma_pinned

__all__ = ["AnonVma", "AnonVmaChain", "anon_vma_prepare", "anon_vma_fork",
           "unlink_anon_vmas", "anon_vma_clone_for_split", "folio_add_new_anon_rmap", "folio_add_anon_rmap_pte",
           "folio_add_file_rmap_pte", "folio_remove_rmap_pte", "folio_move_anon_rmap",
           "folio_try_dup_anon_rmap_pte", "folio_try_share_anon_rmap_pte", "rmap_walk", "rmap_vmas",
           "page_vma_mapped", "folio_add_large_mapcount", "folio_sub_large_mapcount", "folio_maybe_mapped_shared",
           "folio_add_anon_rmap_ptes", "folio_add_anon_rmap_pmd", "folio_add_new_large_anon_rmap",
           "folio_remove_rmap_ptes", "folio_remove_rmap_pmd", "deferred_split_folio"]


class AnonVma:
    """struct anon_vma (include/linux/rmap.h).

    Attributes
    ----------
    id : int
        Model-only label for drawings.
    root, parent : AnonVma
        The top of the fork tree and the anon_vma this one was forked from.
    chains : list of AnonVmaChain
        The kernel's ``rb_root`` interval tree: every VMA that may map pages
        pointing here.
    num_children, num_active_vmas : int
        As in the kernel; they decide whether fork may reuse this anon_vma.
    """

    def __init__(self, id, parent=None):
        self.id = id
        self.parent = parent if parent is not None else self
        self.root = parent.root if parent is not None else self
        self.chains = []
        self.num_children = 0
        self.num_active_vmas = 0

    def __repr__(self):
        return f"<AnonVma {self.id} root={self.root.id} vmas={len(self.chains)}>"


class AnonVmaChain:
    """struct anon_vma_chain: links one VMA to one anon_vma."""

    __slots__ = ("vma", "anon_vma")

    def __init__(self, vma, anon_vma):
        self.vma = vma
        self.anon_vma = anon_vma

    def __repr__(self):
        return f"<AVC vma={self.vma.id} anon_vma={self.anon_vma.id}>"


def _link(vma, anon_vma):
    avc = AnonVmaChain(vma, anon_vma)
    vma.anon_vma_chain.append(avc)
    anon_vma.chains.append(avc)
    return avc


def anon_vma_prepare(k, vma):
    """mm/rmap.c: __anon_vma_prepare() (via vmf_anon_prepare()).

    Give ``vma`` an anon_vma before its first anonymous page: a compatible
    neighbour's (find_mergeable_anon_vma(); separate mmap()s in the model
    leave a gap, so only pieces of a split VMA are neighbours), or a new one.
    """
    if vma.anon_vma is not None:
        return vma.anon_vma
    av = find_mergeable_anon_vma(vma)
    if av is not None:
        vma.anon_vma = av
        av.num_active_vmas += 1
        _link(vma, av)
        k.trace.emit("anon_vma_prepare", f"reuse anon_vma {av.id}",
                     "find_mergeable_anon_vma(): an adjacent, compatible VMA has one")
        return av
    av = k.new_anon_vma(None)
    av.num_children = 1          # the self-parent link of a new root
    av.num_active_vmas = 1
    vma.anon_vma = av
    _link(vma, av)
    k.trace.emit("anon_vma_prepare", f"new anon_vma {av.id}", "first anon page of this VMA")
    return av


def _anon_vma_compatible(a, b):
    """mm/vma.c: anon_vma_compatible(): ``a`` ends where ``b`` starts, same
    file and offsets, flags equal but for access bits."""
    return (a.end == b.start and a.file is b.file and a.shared == b.shared
            and a.dontcopy == b.dontcopy and a.wipeonfork == b.wipeonfork
            and a.hugepage == b.hugepage and a.nohugepage == b.nohugepage
            and b.pgoff == a.pgoff + ((b.start - a.start) >> 12))


def find_mergeable_anon_vma(vma):
    """mm/vma.c: find_mergeable_anon_vma(): the anon_vma of an adjacent,
    compatible neighbour (next first, then prev) whose chain holds only its
    own anon_vma (reusable_anon_vma(): never one that fork has linked)."""
    mm = vma.mm
    i = mm.vmas.index(vma)
    nxt = mm.vmas[i + 1] if i + 1 < len(mm.vmas) else None
    prev = mm.vmas[i - 1] if i > 0 else None
    for old, a, b in ((nxt, vma, nxt), (prev, prev, vma)):
        if old is not None and _anon_vma_compatible(a, b) and old.anon_vma is not None \
                and len(old.anon_vma_chain) == 1:
            return old.anon_vma
    return None


def anon_vma_clone_for_split(dst, src):
    """mm/rmap.c: anon_vma_clone() as called by __split_vma(): the new piece
    links to the same anon_vmas and shares the VMA's own anon_vma."""
    for avc in src.anon_vma_chain:
        _link(dst, avc.anon_vma)
    dst.anon_vma = src.anon_vma
    if dst.anon_vma is not None:
        dst.anon_vma.num_active_vmas += 1


def anon_vma_fork(k, vma, pvma):
    """mm/rmap.c: anon_vma_fork(): attach the child's VMA to the rmap.

    (a) anon_vma_clone(): one chain per anon_vma on the parent's chain, so
    rmap walks of the parent's pages also visit the child.  While cloning,
    an anon_vma whose owner is gone (no active VMAs) and that has fewer than
    two children is reused as the child's own.  (b) Otherwise a new
    anon_vma, child of the parent VMA's, for the pages the child creates.
    """
    if pvma.anon_vma is None:
        return
    reused = None
    for avc in pvma.anon_vma_chain:
        av = avc.anon_vma
        _link(vma, av)
        # "Reuse existing anon_vma if it has no vma and only one anon_vma
        # child.  Root anon_vma is never reused: it has self-parent reference
        # and at least one child."
        if reused is None and av.num_children < 2 and av.num_active_vmas == 0:
            reused = av
    if reused is not None:
        vma.anon_vma = reused
        reused.num_active_vmas += 1
        k.trace.emit("anon_vma_fork", f"reuse anon_vma {reused.id}",
                     "its owner is gone and it has fewer than 2 children")
        return
    av = k.new_anon_vma(pvma.anon_vma)
    av.num_active_vmas = 1
    pvma.anon_vma.num_children += 1
    vma.anon_vma = av
    _link(vma, av)
    k.trace.emit("anon_vma_fork", f"new anon_vma {av.id}",
                 f"child of anon_vma {pvma.anon_vma.id}, root {av.root.id}")


def unlink_anon_vmas(k, vma):
    """mm/rmap.c: unlink_anon_vmas(): drop the VMA's chains (munmap, exit)."""
    if vma.anon_vma is not None:
        vma.anon_vma.num_active_vmas -= 1
    for avc in vma.anon_vma_chain:
        av = avc.anon_vma
        av.chains.remove(avc)
        if not av.chains:
            av.parent.num_children -= 1
    vma.anon_vma_chain = []
    vma.anon_vma = None


def folio_add_new_anon_rmap(k, folio, vma, addr):
    """mm/rmap.c: folio_add_new_anon_rmap(folio, vma, addr, RMAP_EXCLUSIVE).

    A fresh folio, seen by nobody else yet: point it at the VMA's own
    anon_vma, set its index, mapcount 1, and PageAnonExclusive in eras that
    have it (v5.19+).  The allocation's reference becomes the PTE's.
    """
    folio.anon = True
    folio.mapping = vma.anon_vma
    folio.index = vma.pgoff + ((addr - vma.start) >> 12)
    folio.mapcount = 1
    if k.era.anon_exclusive:
        folio.anon_exclusive = True
    if k.rmap_observer is not None:
        k.rmap_observer("map", folio, vma)


def folio_add_anon_rmap_pte(k, folio, vma, exclusive):
    """include/linux/rmap.h: folio_add_anon_rmap_pte() (mm/rmap.c:
    folio_add_anon_rmap_ptes()): map an existing anon folio once
    more (migration remap); RMAP_EXCLUSIVE sets PageAnonExclusive.  The
    caller takes the PTE's reference (folio_get())."""
    folio.mapcount += 1
    if exclusive and k.era.anon_exclusive:
        folio.anon_exclusive = True
    if k.rmap_observer is not None:
        k.rmap_observer("map", folio, vma)


def folio_add_file_rmap_pte(k, folio, vma):
    """include/linux/rmap.h: folio_add_file_rmap_pte() (a wrapper of
    mm/rmap.c: folio_add_file_rmap_ptes(); folio_dup_file_rmap_pte() at
    fork): one more mapping, one more reference for it."""
    folio.mapcount += 1
    folio.refcount += 1
    if k.rmap_observer is not None:
        k.rmap_observer("map", folio, vma)


def folio_remove_rmap_pte(k, folio, vma):
    """include/linux/rmap.h: folio_remove_rmap_pte() (mm/rmap.c:
    folio_remove_rmap_ptes()): one mapping less.  The anon
    ``mapping`` stays until the folio is freed; the PTE's reference is
    dropped separately by the caller (folio_put()).  A page of a large
    folio goes to :func:`folio_remove_rmap_ptes`."""
    if folio.large:
        return folio_remove_rmap_ptes(k, folio.folio, folio.i, 1, vma)
    folio.mapcount -= 1
    if k.rmap_observer is not None:
        k.rmap_observer("unmap", folio, vma)


def folio_move_anon_rmap(k, folio, vma):
    """mm/rmap.c: folio_move_anon_rmap() (page_move_anon_rmap() before
    v6.7): point a reused folio at this VMA's own anon_vma, so later walks
    need not visit the other processes."""
    if folio.mapping is not vma.anon_vma:
        k.trace.emit(kernel_name(k.era, "folio_move_anon_rmap"), f"anon_vma {vma.anon_vma.id}",
                     "reused page now belongs to this VMA only", folio.pfn)
        folio.mapping = vma.anon_vma


def folio_try_dup_anon_rmap_pte(k, folio, src_vma, dst_vma):
    """include/linux/rmap.h: __folio_try_dup_anon_rmap() at PTE level (fork).

    Returns False (-EBUSY) when the folio is PageAnonExclusive and may be
    pinned in an mm that has pinned (folio_needs_cow_for_dma()): the caller
    must copy it for the child.  Otherwise clear PageAnonExclusive and count
    the new mapping.  Since v5.19 copy_present_ptes() takes the child's
    reference first, so the refcount tested includes it.  Before v5.19 there
    is no AE flag: v5.9's copy_present_page() open-coded the same test
    (mm has pinned, page_maybe_dma_pinned()) before its get_page().
    """
    era = k.era
    if era.fork_copies_maybe_pinned and src_vma.mm.has_pinned \
            and folio.refcount + (1 if era.anon_exclusive else 0) >= GUP_PIN_COUNTING_BIAS \
            and (folio.anon_exclusive or not era.anon_exclusive):
        return False
    folio.anon_exclusive = False
    folio.mapcount += 1
    folio.refcount += 1
    if k.rmap_observer is not None:
        k.rmap_observer("map", folio, dst_vma)
    return True


def folio_try_share_anon_rmap_pte(folio):
    """include/linux/rmap.h: __folio_try_share_anon_rmap(): clear
    PageAnonExclusive before the page may become shared (migration,
    swap-out), unless it may be pinned (-EBUSY, returns False).  v5.19-v6.5
    call it page_try_share_anon_rmap(); before v5.19 there is no such step
    (no PageAnonExclusive)."""
    if folio_maybe_dma_pinned(folio):
        return False
    folio.anon_exclusive = False
    return True


def page_vma_mapped(vma, addr, folio):
    """mm/page_vma_mapped.c: page_vma_mapped_walk(), one page: does the PTE
    at ``addr`` in ``vma`` map ``folio`` (present or migration entry)?"""
    e = vma.mm.pte(addr)
    return e is not None and e.folio is folio


def rmap_vmas(folio):
    """The VMAs an rmap walk of ``folio`` visits: those linked to its
    anon_vma (anon_vma_interval_tree_foreach()) or in its file's i_mmap
    (vma_interval_tree_foreach()) whose range covers the folio's index.
    Empty for the zero page and for a folio with no mapping."""
    mapping = folio.mapping
    if mapping is None:
        return []
    index = folio.index
    vmas = [avc.vma for avc in mapping.chains] if folio.anon else mapping.i_mmap
    return [v for v in vmas if v.pgoff <= index < v.pgoff + ((v.end - v.start) >> 12)]


def rmap_walk(k, folio, rmap_one, done=None):
    """mm/rmap.c: rmap_walk(): call ``rmap_one(vma, addr)`` for every PTE
    mapping ``folio``.

    Anon folios: the interval tree of ``folio->mapping`` (rmap_walk_anon());
    file folios: the file's i_mmap (__rmap_walk_file()); either way only the
    VMAs whose range covers the folio's index (:func:`rmap_vmas`).  Every
    VMA visited is a step, whether or not it maps the page; ``done()`` may
    stop the walk early (try_to_unmap()/try_to_migrate() stop once
    folio_mapped() is false).

    Returns
    -------
    (steps, hits) : (int, int)
        VMAs visited and PTEs found.
    """
    if folio.mapping is None:
        return 0, 0
    steps = hits = 0
    func = "rmap_walk_anon" if folio.anon else "rmap_walk_file"
    for vma in rmap_vmas(folio):
        if done is not None and done():
            break
        steps += 1
        addr = vma.vma_address(folio.index)
        if addr is not None and page_vma_mapped(vma, addr, folio):
            hits += 1
            rmap_one(vma, addr)
    k.walk_steps += steps
    k.trace.emit(func, f"{hits} mapping(s) found", f"visited {steps} VMA(s)", folio.pfn)
    return steps, hits


# -- large folios (mm/rmap.c: __folio_add_rmap(), __folio_remove_rmap();
#    include/linux/rmap.h: folio_add_return_large_mapcount(),
#    folio_sub_return_large_mapcount()) ------------------------------------

def folio_add_large_mapcount(k, folio, nr, mm):
    """include/linux/rmap.h: folio_add_return_large_mapcount() (v6.15 with
    CONFIG_MM_ID; before, a plain ``_large_mapcount += nr``).

    The mm owning a slot adds to that slot; an mm without a slot takes a
    free one ("We might have other mappings already": the shared bit is set
    if the folio had mappings; taking slot 1 always sets it, "Slot 0
    certainly has mappings as well"); with both slots taken by other mms
    its mappings count only in the large mapcount.  Slot mapcounts are
    stored as the kernel stores them (-1 = none).
    """
    folio.large_mapcount += nr
    if not k.era.mm_id:
        return
    new = folio.large_mapcount - 1          # the stored (off-by-one) value
    ids, mc, mid = folio.mm_id, folio.mm_id_mapcount, mm.mm_id
    if ids[0] == mid:
        mc[0] += nr
    elif ids[1] == mid:
        mc[1] += nr
    elif ids[0] == MM_ID_DUMMY:
        ids[0] = mid
        mc[0] = nr - 1
        if new != nr - 1:
            folio.mm_ids_shared = True
    elif ids[1] == MM_ID_DUMMY:
        ids[1] = mid
        mc[1] = nr - 1
        folio.mm_ids_shared = True


def folio_sub_large_mapcount(k, folio, nr, mm):
    """include/linux/rmap.h: folio_sub_return_large_mapcount() (v6.15).

    A slot whose mapcount goes negative is freed; then, "If one MM slot
    owns all mappings, the folio is mapped exclusively": the shared bit is
    cleared when a slot's mapcount equals the new large mapcount (also when
    the folio is now unmapped: both slots are free).
    """
    folio.large_mapcount -= nr
    if not k.era.mm_id:
        return
    new = folio.large_mapcount - 1
    ids, mc, mid = folio.mm_id, folio.mm_id_mapcount, mm.mm_id
    for s in (0, 1):
        if ids[s] == mid:
            mc[s] -= nr
            if mc[s] >= 0:
                return
            mc[s] = -1
            ids[s] = MM_ID_DUMMY
            break
    if mc[0] == new or mc[1] == new:
        folio.mm_ids_shared = False


def folio_maybe_mapped_shared(folio):
    """include/linux/mm.h: folio_maybe_mapped_shared() (v6.15).

    Small folio: mapcount > 1.  Large folio: false when mapped at most
    once; true when any page is mapped more than once (an entire mapping,
    or more mappings than pages); else FOLIO_MM_IDS_SHARED_BIT.
    """
    if not folio.large:
        return folio.mapcount > 1
    mapcount = folio.large_mapcount
    if mapcount <= 1:
        return False
    if folio.entire_mapcount or mapcount > folio.nr:
        return True
    return folio.mm_ids_shared


def folio_add_anon_rmap_ptes(k, folio, i0, nr, vma, exclusive):
    """include/linux/rmap.h: folio_add_anon_rmap_ptes() -> mm/rmap.c:
    __folio_add_anon_rmap(), RMAP_LEVEL_PTE: pages ``i0 .. i0+nr-1`` of
    ``folio`` get one more PTE mapping.

    With CONFIG_PAGE_MAPCOUNT each page's ``_mapcount`` goes up and
    ``_nr_pages_mapped`` counts the pages mapped for the first time; the
    large mapcount (and the MM slot) goes up by ``nr``.  RMAP_EXCLUSIVE sets
    PageAnonExclusive on each page.  References are the caller's.
    """
    pages = folio.pages
    if k.page_mapcount:
        first = 0
        for i in range(i0, i0 + nr):
            p = pages[i]
            p.pte_mapcount += 1
            if p.pte_mapcount == 1:
                first += 1
        folio.nr_pages_mapped += first
    folio_add_large_mapcount(k, folio, nr, vma.mm)
    if exclusive and k.era.anon_exclusive:
        for i in range(i0, i0 + nr):
            pages[i].anon_exclusive = True
    if k.rmap_observer is not None:
        for i in range(i0, i0 + nr):
            k.rmap_observer("map", pages[i], vma)


def folio_add_anon_rmap_pmd(k, folio, vma, exclusive):
    """include/linux/rmap.h: folio_add_anon_rmap_pmd() (RMAP_LEVEL_PMD):
    entire and large mapcount +1; RMAP_EXCLUSIVE sets PageAnonExclusive on
    the head page only."""
    folio.entire_mapcount += 1
    folio_add_large_mapcount(k, folio, 1, vma.mm)
    if exclusive and k.era.anon_exclusive:
        folio.pages[0].anon_exclusive = True
    if k.rmap_observer is not None:
        k.rmap_observer("map", folio, vma)


def folio_add_new_large_anon_rmap(k, folio, vma, addr, pmd):
    """mm/rmap.c: folio_add_new_anon_rmap(folio, vma, addr, RMAP_EXCLUSIVE)
    for a large folio: mTHP (not PMD-mappable) as mapped by ``nr`` PTEs --
    every page's ``_mapcount`` 0, ``_nr_pages_mapped`` = nr, large mapcount
    nr, AE on every page; PMD-sized as one PMD mapping -- entire mapcount 1,
    large mapcount 1, AE on the head page only."""
    folio.anon = True
    folio.mapping = vma.anon_vma
    folio.index = vma.linear_page_index(addr)
    if pmd:
        folio_add_anon_rmap_pmd(k, folio, vma, True)
    else:
        folio_add_anon_rmap_ptes(k, folio, 0, folio.nr, vma, True)


def folio_remove_rmap_ptes(k, folio, i0, nr, vma):
    """mm/rmap.c: folio_remove_rmap_ptes() -> __folio_remove_rmap(),
    RMAP_LEVEL_PTE.  An anon folio left partially mapped goes on the
    deferred split queue (deferred_split_folio()): with
    CONFIG_PAGE_MAPCOUNT when pages lost their last mapping while other
    pages are still PTE-mapped and no PMD maps the folio (a page counts as
    unmapped only when ``_nr_pages_mapped`` stays below ENTIRELY_MAPPED,
    i.e. no PMD: "atomic_sub_return_relaxed(last, mapped) <
    ENTIRELY_MAPPED"; the PMD's own removal queues it later, see
    :func:`folio_remove_rmap_pmd`); with CONFIG_NO_PAGE_MAPCOUNT when the
    large mapcount is below the number of pages and no PMD maps it."""
    folio_sub_large_mapcount(k, folio, nr, vma.mm)
    if k.page_mapcount:
        pages = folio.pages
        last = 0
        for i in range(i0, i0 + nr):
            p = pages[i]
            p.pte_mapcount -= 1
            if p.pte_mapcount == 0:
                last += 1
        folio.nr_pages_mapped -= last
        partially = last and folio.nr_pages_mapped and not folio.entire_mapcount
    else:
        left = folio.large_mapcount
        partially = left and left < folio.nr and not folio.entire_mapcount
    if k.rmap_observer is not None:
        for i in range(i0, i0 + nr):
            k.rmap_observer("unmap", folio.pages[i], vma)
    if partially and folio.anon:
        deferred_split_folio(k, folio)


def folio_remove_rmap_pmd(k, folio, vma):
    """mm/rmap.c: folio_remove_rmap_pmd() (RMAP_LEVEL_PMD): entire and large
    mapcount -1; when the last PMD goes while only some pages are still
    PTE-mapped, the folio is queued for deferred split."""
    folio_sub_large_mapcount(k, folio, 1, vma.mm)
    folio.entire_mapcount -= 1
    if k.page_mapcount:
        partially = folio.entire_mapcount == 0 and 0 < folio.nr_pages_mapped < folio.nr
    else:
        partially = folio.entire_mapcount == 0 and 0 < folio.large_mapcount < folio.nr
    if k.rmap_observer is not None:
        k.rmap_observer("unmap", folio, vma)
    if partially and folio.anon:
        deferred_split_folio(k, folio)


def deferred_split_folio(k, folio):
    """mm/huge_memory.c: deferred_split_folio(folio, partially_mapped=true):
    queue a partially mapped anon large folio; the deferred-split shrinker
    (deferred_split_scan()) splits it under memory pressure
    (:meth:`mmkit.Kernel.shrink_deferred_split`)."""
    if not folio.deferred:
        folio.deferred = True
        k.deferred_split.append(folio)
        k.trace.emit(kernel_name(k.era, "deferred_split_folio"), "queued for deferred split",
                     "partially mapped large anon folio", folio.pfn)
