"""mremap(): shrink, grow or move a mapping (mm/mremap.c, as of v6.18).

What the model does, with the kernel function that does it (mm/mremap.c
unless named otherwise; the function split is v6.15's ``struct
vma_remap_struct`` refactor, the behaviour the same in every era the kit
has, 5.7 to 6.18):

* **checks** -- check_mremap_params(): a page-aligned ``addr``, a non-zero
  new length, MREMAP_FIXED / MREMAP_DONTUNMAP only with MREMAP_MAYMOVE,
  MREMAP_DONTUNMAP only without resizing (all ``EINVAL``).  No VMA at
  ``addr``: ``EFAULT`` (do_mremap()).  A target past ``TASK_SIZE`` or
  overlapping the source is ``EINVAL`` (mremap_to()); since v6.17
  (3215eaceca87 "mm/mremap: refactor initial parameter sanity checks")
  those checks, and a new length past ``TASK_SIZE`` (``EINVAL``, where
  older kernels ended in ``ENOMEM``), come before the VMA is looked up.
* **same size, not moved** -- nothing happens (mremap_at(): MREMAP_NO_RESIZE).
* **shrink** -- shrink_vma(): munmap of the tail ``[addr+new, addr+old)``.
* **grow** -- expand_vma(): resize_is_valid() (the old range must end
  inside the VMA: ``EFAULT``); in place when the range ends at the VMA's
  end and the space after it is free (vrm_can_expand_in_place() ->
  vma_expandable(); vma_merge_extend() makes the VMA longer); otherwise
  ``ENOMEM`` without MREMAP_MAYMOVE, or a move.
* **move** -- move_vma(): copy_vma() makes the new VMA with the same
  flags, the same anon_vma and anon_vma chains (anon_vma_clone()) and
  ``vm_pgoff`` = the old VMA's + the offset into it, so ``folio->index``
  still finds every page through the rmap (vma_address() gives the new
  address); move_page_tables() moves the entries; unmap_source_vma()
  munmaps the old range (do_vmi_munmap(), which splits the old VMA and
  finds its entries already gone).  MREMAP_FIXED unmaps what is at the
  target first (mremap_to() -> do_munmap()).  MREMAP_DONTUNMAP keeps the
  old VMA, empty (dontunmap_complete(); its anon_vma links are dropped
  when the whole VMA moved).
* **move_page_tables()** -- per PMD-sized extent (get_extent(): bounded by
  the next PMD boundary of the source *and* of the target): a PMD-mapped
  THP whose whole PMD moves to a PMD-aligned target is moved as one entry
  (move_pgt_entry(HPAGE_PMD) -> mm/huge_memory.c: move_huge_pmd()); any
  other extent of a PMD mapping splits it first (split_huge_pmd(), so the
  THP becomes PTE-mapped, with AE on every page if the head had it; in the
  5.x kernels the extent was bounded by the source only and move_huge_pmd()
  itself refused an unaligned target -- the same outcome); a
  whole PTE table moves as one entry (move_normal_pmd(),
  CONFIG_HAVE_MOVE_PMD on x86-64); the rest goes entry by entry
  (move_ptes(): ptep_get_and_clear() + set_pte_at()).  No move touches a
  counter: refcount, mapcounts, ``_nr_pages_mapped``, MM-ID slots, pins and
  PageAnonExclusive stay as they were -- a page is mapped by the same mm,
  only at another address.
* **several VMAs** -- since v6.17 MREMAP_FIXED without a resize may span
  several VMAs (remap_move(), "mm/mremap: permit mremap() move of multiple
  VMAs"), moved one by one with their gaps kept; before, ``EFAULT``.

Not modelled, or left out
-------------------------
* VMA merging (copy_vma()'s vma_merge_new_range(), vma_merge_extend()
  merging with the next VMA): the model never merges VMAs;
* try_realign_addr() (moving a PTE table whole when the range could be
  aligned down): the entries end up the same;
* mlock, VM_ACCOUNT, uffd, soft-dirty, hugetlb, mseal (EPERM), RLIMIT_AS
  (may_expand_vm()), sysctl max_map_count;
* where a moved mapping lands without MREMAP_FIXED: the model's
  bottom-up get_unmapped_area(), as for mmap(); a MREMAP_DONTUNMAP hint
  address is used when it is free.

Where the kernel would change something before failing (mremap_to()
unmaps the target before resize_is_valid() may return ``EFAULT``), the
model checks first and changes nothing, as a failed call must leave the
state as it was (the same choice as :func:`mmkit.madvise.do_madvise`).
"""

from .era import kernel_name
from .errors import InvalidArgument, KernelError
from .mm import PMD_SIZE, TASK_SIZE, Pmd, Vma
from .mmap import do_munmap
from .pageinfo import PAGE_SIZE
from .rmap import anon_vma_clone_for_split, unlink_anon_vmas

__all__ = ["check_mremap_args", "do_mremap", "move_page_tables", "copy_vma", "MREMAP_MAYMOVE", "MREMAP_FIXED",
           "MREMAP_DONTUNMAP"]

#: include/uapi/linux/mman.h
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4

_PMD_SHIFT = 21


def _int(v, what):
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidArgument(f"{what} must be an int, not {type(v).__name__}")
    if v < 0:
        raise InvalidArgument(f"{what} must not be negative, not {v}")
    return v


def check_mremap_args(addr, old_npages, new_npages, maymove=False, fixed=None, dontunmap=False):
    """Validate mremap()'s arguments as the model and the live backend take them.

    Parameters
    ----------
    addr : int
        Start of the old range (bytes).
    old_npages, new_npages : int
        Old and new lengths in pages.
    maymove : bool
        MREMAP_MAYMOVE.
    fixed : int or None
        The target address: MREMAP_FIXED.
    dontunmap : bool
        MREMAP_DONTUNMAP.

    Returns
    -------
    flags : int
        The MREMAP_* flags.

    Raises
    ------
    InvalidArgument
        A value of the wrong type or negative (nothing a kernel would see).
    KernelError
        ``EINVAL`` where mm/mremap.c: check_mremap_params() refuses: ``addr``
        or ``fixed`` not page-aligned, ``new_npages`` 0, MREMAP_FIXED or
        MREMAP_DONTUNMAP without MREMAP_MAYMOVE, MREMAP_DONTUNMAP with a
        resize.
    """
    _int(addr, "address")
    _int(old_npages, "old_npages")
    _int(new_npages, "new_npages")
    for v, what in ((maymove, "maymove"), (dontunmap, "dontunmap")):
        if not isinstance(v, bool):
            raise InvalidArgument(f"{what} must be True or False, not {v!r}")
    if fixed is not None:
        _int(fixed, "fixed")
    flags = (MREMAP_MAYMOVE if maymove else 0) | (MREMAP_FIXED if fixed is not None else 0) \
        | (MREMAP_DONTUNMAP if dontunmap else 0)
    if addr % PAGE_SIZE:
        raise KernelError("EINVAL", f"address {addr:#x} is not page-aligned (check_mremap_params())")
    if new_npages == 0:
        raise KernelError("EINVAL", "a new length of 0 (check_mremap_params(): \"a zero new-len is nonsensical\")")
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP):
        if fixed is not None and fixed % PAGE_SIZE:
            raise KernelError("EINVAL", f"target {fixed:#x} is not page-aligned (check_mremap_params())")
        if not maymove:
            raise KernelError("EINVAL", "MREMAP_FIXED and MREMAP_DONTUNMAP need MREMAP_MAYMOVE "
                                        "(check_mremap_params(): \"A fixed address implies a move\")")
        if dontunmap and old_npages != new_npages:
            raise KernelError("EINVAL", "MREMAP_DONTUNMAP cannot resize (check_mremap_params())")
    return flags


def do_mremap(k, mm, addr, old_npages, new_npages, flags, new_addr=0):
    """mm/mremap.c: do_mremap(): returns the address of the (new) mapping.

    ``flags`` and the arguments were checked by :func:`check_mremap_args`.
    Everything that can fail is checked before anything changes.
    """
    old_len, new_len = old_npages * PAGE_SIZE, new_npages * PAGE_SIZE
    emit = k.trace.emit
    v = k.era.version
    if v is None or v >= (6, 17):
        # 3215eaceca87 "mm/mremap: refactor initial parameter sanity checks"
        # (v6.17): check_mremap_params() refuses a silly length, target or
        # overlap before looking at the VMAs
        if new_len > TASK_SIZE:
            raise KernelError("EINVAL", f"a new length of {new_npages} pages is past TASK_SIZE ({TASK_SIZE:#x}) "
                                        "(check_mremap_params(): \"Is the new length silly?\")")
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP):
            _check_target(addr, old_len, new_len, new_addr)
        if flags & MREMAP_FIXED and old_len == new_len:       # vrm_move_only()
            return _remap_move(k, mm, addr, old_len, flags, new_addr)
    vma = mm.find_vma(addr)                        # vma_lookup()
    if vma is None:
        raise KernelError("EFAULT", f"no mapping at {addr:#x} (do_mremap(): vma_lookup())")
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP):
        return _mremap_to(k, mm, vma, addr, old_len, new_len, flags, new_addr)
    if new_len == old_len:
        emit("mremap", f"{addr:#x} unchanged", "same length, no MREMAP_FIXED: nothing to do (MREMAP_NO_RESIZE)")
        return addr
    if new_len < old_len:
        do_munmap(k, mm, addr + new_len, (old_len - new_len) // PAGE_SIZE)
        emit(kernel_name(k.era, "shrink_vma"), f"{addr:#x} now {new_npages} page(s)",
             f"unmapped the tail {addr + new_len:#x}-{addr + old_len:#x}")
        return addr
    _resize_is_valid(k, vma, addr, old_len, new_len, flags)
    delta = new_len - old_len
    if vma.end - addr == old_len and _free(mm, vma.end, vma.end + delta):
        vma.end += delta                            # expand_vma_in_place() -> vma_merge_extend()
        mm._last = None
        _reserve(mm, vma.end)
        emit(kernel_name(k.era, "expand_vma_in_place"), f"VMA now {vma.start:#x}-{vma.end:#x}",
             f"the {delta // PAGE_SIZE} page(s) after it are free (vma_expandable())")
        return addr
    if not flags & MREMAP_MAYMOVE:
        why = ("the range does not end at the VMA's end" if vma.end - addr != old_len else
               f"{vma.end:#x}-{vma.end + delta:#x} is not free")
        raise KernelError("ENOMEM", f"cannot grow in place ({why}) and MREMAP_MAYMOVE was not given "
                                    "(expand_vma())")
    target = _new_addr(k, mm, vma, new_len, 0)
    return _move_vma(k, mm, vma, addr, old_len, new_len, target, flags)


def _remap_move(k, mm, addr, length, flags, new_addr):
    """mm/mremap.c: remap_move() (v6.17, "mm/mremap: permit mremap() move of
    multiple VMAs"): MREMAP_FIXED without a resize moves every VMA in
    ``[addr, addr+length)``, each by mremap_to(), keeping the gaps between
    them ("we map B' at A'->vm_end + X"): the layout is shifted by
    ``new_addr - addr``.  A hole at the start is ``EFAULT``; holes further on
    are skipped, and what is mapped in the target's gaps stays.  Every VMA
    the model has may take part (vma_multi_allowed(): anon, shmem, files
    whose get_unmapped_area() obeys MAP_FIXED; no uffd).  The plan is made
    from the layout before anything moves, so no move can fail half-way."""
    end = addr + length
    vmas = mm.vmas_in(addr, end)
    if not vmas or vmas[0].start > addr:
        raise KernelError("EFAULT", f"no mapping at {addr:#x} (remap_move(): \"No gap permitted at the start of "
                                    "the range\")")
    plan = [(max(v.start, addr), min(end, v.end) - max(v.start, addr)) for v in vmas]
    for a, n in plan:
        vma = mm.find_vma(a)
        _mremap_to(k, mm, vma, a, n, n, flags, new_addr + (a - addr))
    if len(plan) > 1:
        k.trace.emit("remap_move", f"{len(plan)} VMAs moved to {new_addr:#x}", "MREMAP_FIXED without a resize "
                     "may span several VMAs since v6.17; the gaps between them are kept")
    return new_addr


def _mremap_to(k, mm, vma, addr, old_len, new_len, flags, new_addr):
    """mm/mremap.c: mremap_to(): MREMAP_FIXED (and MREMAP_DONTUNMAP)."""
    fixed = flags & MREMAP_FIXED
    _check_target(addr, old_len, new_len, new_addr)
    v = k.era.version
    if flags & MREMAP_DONTUNMAP and (vma.file is not None or vma.shared) and v is not None and v < (5, 13):
        raise KernelError("EINVAL", "MREMAP_DONTUNMAP works on private anonymous mappings only before v5.13 "
                                    "(a4609387859f \"mm: extend MREMAP_DONTUNMAP to non-anonymous mappings\")")
    move_len = min(old_len, new_len)               # a shrink is done first (shrink_vma())
    _resize_is_valid(k, vma, addr, move_len, new_len, flags)
    target = new_addr if fixed else _new_addr(k, mm, vma, new_len, new_addr)
    # the checks are done: from here on the call succeeds
    if fixed:
        do_munmap(k, mm, new_addr, new_len // PAGE_SIZE)
        k.trace.emit("mremap_to", f"target {new_addr:#x}-{new_addr + new_len:#x} cleared",
                     "MREMAP_FIXED unmaps whatever is mapped there first (do_munmap())")
        vma = mm.find_vma(addr)
    if new_len < old_len:
        do_munmap(k, mm, addr + new_len, (old_len - new_len) // PAGE_SIZE)
        vma = mm.find_vma(addr)
    return _move_vma(k, mm, vma, addr, move_len, new_len, target, flags)


def _check_target(addr, old_len, new_len, new_addr):
    """The target checks: past TASK_SIZE or overlapping the source is EINVAL
    (mremap_to() before v6.17, check_mremap_params() since)."""
    if new_len > TASK_SIZE or new_addr > TASK_SIZE - new_len:
        raise KernelError("EINVAL", f"target {new_addr:#x} + {new_len // PAGE_SIZE} page(s) is past TASK_SIZE "
                                    f"({TASK_SIZE:#x})")
    if addr + old_len > new_addr and new_addr + new_len > addr:
        raise KernelError("EINVAL", f"target {new_addr:#x}-{new_addr + new_len:#x} overlaps the source "
                                    f"{addr:#x}-{addr + old_len:#x} (vrm_overlaps())")


def _resize_is_valid(k, vma, addr, old_len, new_len, flags):
    """mm/mremap.c: resize_is_valid() (check_prep_vma() since v6.17)."""
    if old_len == 0 and not vma.shared:
        raise KernelError("EINVAL", "old length 0 duplicates a mapping, which a private mapping cannot "
                                    "(resize_is_valid())")
    if old_len > vma.end - addr:
        raise KernelError("EFAULT", f"{addr:#x} + {old_len // PAGE_SIZE} page(s) is not inside one VMA "
                                    f"({vma.start:#x}-{vma.end:#x}) (resize_is_valid(): \"We can't remap "
                                    "across vm area boundaries\")")
    if new_len > old_len and vma.pgoff + ((addr - vma.start) >> 12) + (new_len >> 12) >= 1 << 64:
        raise KernelError("EINVAL", "the page offset would overflow (resize_is_valid())")


def _free(mm, start, end):
    """vma_expandable(): no VMA in ``[start, end)`` and ``end`` below TASK_SIZE.
    Walks VMAs, not pages."""
    return end <= TASK_SIZE and not mm.vmas_in(start, end)


def _reserve(mm, end):
    """Keep the model's bottom-up get_unmapped_area() above a VMA mremap()
    placed or grew: its next range starts past ``end`` (and a gap page)."""
    if mm.mmap_base < end + PAGE_SIZE:
        mm.mmap_base = end + PAGE_SIZE


def _new_addr(k, mm, vma, new_len, hint):
    """mm/mremap.c: vrm_set_new_addr() -> get_unmapped_area(): a free range
    for the moved mapping (a MREMAP_DONTUNMAP hint if it is free).  ENOMEM
    when none fits; nothing changes."""
    npages = new_len // PAGE_SIZE
    if hint and hint + new_len <= TASK_SIZE and _free(mm, hint, hint + new_len):
        return hint
    align = k.era.thp_align_anon and vma.file is None and not vma.shared and npages % 512 == 0
    base = mm.mmap_base
    start = mm.get_unmapped_area(npages, align)
    mm.mmap_base = base                            # taken for real in _move_vma()
    return start


def copy_vma(k, vma, addr, new_addr, new_len):
    """mm/vma.c: copy_vma(): a new VMA at ``new_addr`` like ``vma`` (flags,
    file, anon_vma) whose ``vm_pgoff`` is the old VMA's plus the offset of
    ``addr`` in it, so the pages keep their index; anon_vma_clone() links it
    to every anon_vma of the old one (the rmap of the moved pages finds it)."""
    mm = vma.mm
    new = Vma(mm, new_addr, new_addr + new_len, vma.read, vma.write, vma.shared, vma.file,
              vma.pgoff + ((addr - vma.start) >> 12), id=k.next_id())
    new.pgoff = vma.pgoff + ((addr - vma.start) >> 12)
    new.dontcopy, new.wipeonfork = vma.dontcopy, vma.wipeonfork
    new.hugepage, new.nohugepage = vma.hugepage, vma.nohugepage
    anon_vma_clone_for_split(new, vma)
    mm.insert_vma(new)
    if vma.file is not None:
        vma.file.i_mmap.append(new)
    _reserve(mm, new.end)
    return new


def _move_vma(k, mm, vma, addr, old_len, new_len, new_addr, flags):
    """mm/mremap.c: move_vma(): copy_vma(), move_page_tables(), then
    unmap_source_vma() (or dontunmap_complete())."""
    emit = k.trace.emit
    new = copy_vma(k, vma, addr, new_addr, new_len)
    emit("copy_vma", f"new VMA {new.start:#x}-{new.end:#x}",
         f"vm_pgoff {new.pgoff:#x}: the old VMA's + {(addr - vma.start) >> 12}, same anon_vma"
         + (f" {vma.anon_vma.id}" if vma.anon_vma is not None else " (none yet)"))
    moved = move_page_tables(k, vma, addr, new, new_addr, old_len)
    if flags & MREMAP_DONTUNMAP:
        if addr == vma.start and addr + old_len == vma.end:
            unlink_anon_vmas(k, vma)
        emit(kernel_name(k.era, "dontunmap_complete"), f"old VMA {vma.start:#x}-{vma.end:#x} kept, empty",
             "MREMAP_DONTUNMAP")
    else:
        do_munmap(k, mm, addr, old_len // PAGE_SIZE)
    emit("move_vma", f"moved to {new_addr:#x}", f"{moved} entr{'y' if moved == 1 else 'ies'} moved; "
         "refcount, mapcounts and PageAnonExclusive unchanged")
    if k.check:
        k.after_range(mm, new.start, new.end)
    return new_addr


def move_page_tables(k, vma, old_addr, new_vma, new_addr, length):
    """mm/mremap.c: move_page_tables(): move the entries of ``[old_addr,
    old_addr+length)`` to ``new_addr``.  Returns the number of entries
    (PTEs, or PMDs) moved.

    Walks the page tables that exist, so its cost follows what is mapped.
    See the module docstring for the per-extent rules.
    """
    from .huge_memory import split_huge_pmd
    mm = vma.mm
    emit = k.trace.emit
    old_end = old_addr + length
    lo, hi = old_addr >> _PMD_SHIFT, (old_end - 1) >> _PMD_SHIFT
    keys = sorted(key for key in mm.pgd if lo <= key <= hi)
    moved = 0
    for key in keys:
        start = max(old_addr, key << _PMD_SHIFT)
        end = min(old_end, (key + 1) << _PMD_SHIFT)
        dst = new_addr + (start - old_addr)
        table = mm.pgd[key]
        whole = end - start == PMD_SIZE and not dst & (PMD_SIZE - 1)   # get_extent() == PMD_SIZE
        dkey = dst >> _PMD_SHIFT
        dtable = mm.pgd.get(dkey)
        if whole and dtable is not None and type(dtable) is not Pmd and not any(dtable):
            del mm.pgd[dkey]                       # an empty table free_pgtables() would have freed
            dtable = None
        if type(table) is Pmd:
            if whole and dtable is None:
                mm.pgd[dkey] = mm.pgd.pop(key)
                moved += 1
                emit("move_huge_pmd", f"PMD moved to {dst:#x}",
                     "the whole PMD moves to a PMD-aligned address: one entry, nothing split", table.folio.pfn)
                continue
            emit("move_page_tables", "split_huge_pmd()",
                 "the extent moved is not a whole PMD to a PMD-aligned address: PTE-map the THP first",
                 table.folio.pfn)
            split_huge_pmd(k, vma, start)
            table = mm.pgd[key]
        elif whole and dtable is None:
            mm.pgd[dkey] = mm.pgd.pop(key)
            n = sum(e is not None for e in table)
            moved += n
            emit("move_normal_pmd", f"PTE table moved to {dst:#x}", f"a whole PMD extent: its {n} PTE(s) "
                 "move with the table (CONFIG_HAVE_MOVE_PMD)")
            continue
        i0 = (start >> 12) & 511
        n = 0
        for i in range(i0, i0 + ((end - start) >> 12)):
            e = table[i]
            if e is None:
                continue
            table[i] = None                        # ptep_get_and_clear()
            mm.set_pte(dst + ((i - i0) << 12), e)  # set_pte_at(): the same entry, bits and page
            n += 1
        if n:
            moved += n
            emit("move_ptes", f"{n} PTE(s) moved to {dst:#x}", "entries move as they are: no counter changes")
    return moved
