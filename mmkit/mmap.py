"""Creating, splitting and removing VMAs (mm/mmap.c, mm/vma.c).

The model does not merge neighbouring VMAs: each mmap() leaves a one-page
gap, and a VMA split by mprotect()/munmap()/madvise() stays split.
"""

from .errors import KernelError
from .memory import zap_pte_range
from .mm import PMD_SIZE, TASK_SIZE, Vma
from .pageinfo import PAGE_SIZE
from .rmap import anon_vma_clone_for_split, unlink_anon_vmas

__all__ = ["do_mmap", "vmas_covering", "split_vma_range", "do_munmap", "exit_mmap"]


def do_mmap(k, mm, npages, read, write, shared, file=None, pgoff=0):
    """mm/mmap.c: do_mmap(): a new VMA; no page is touched yet.

    MAP_SHARED|MAP_ANONYMOUS gets an anonymous shmem file
    (shmem_zero_setup()), so it behaves as a shared file mapping.
    """
    # v6.12+ __get_unmapped_area(): a private anon mapping whose length is a
    # multiple of PMD_SIZE gets a PMD-aligned address (thp_get_unmapped_area_vmflags())
    align = k.era.thp_align_anon and file is None and not shared and npages % 512 == 0
    start = mm.get_unmapped_area(npages, align)  # ENOMEM before anything is created
    if shared and file is None:
        file = k.new_file("dev/zero (deleted)", npages, shmem=True)
    vma = Vma(mm, start, start + npages * PAGE_SIZE, read, write, shared, file,
              pgoff if file is not None else None, id=k.next_id())
    mm.insert_vma(vma)
    if file is not None:
        file.i_mmap.append(vma)
    k.trace.emit("do_mmap", f"new VMA {start:#x}-{vma.end:#x}",
                 f"{npages} page(s), {'shared' if shared else 'private'} "
                 f"{'file ' + file.name if file is not None else 'anon'}, prot {vma.prot}")
    return vma


def __split_vma(k, vma, addr):
    """mm/vma.c: __split_vma(): cut ``vma`` at ``addr``; returns the upper part.
    The new part shares the anon_vma (anon_vma_clone()) and joins i_mmap.
    A PMD mapping that the cut crosses is split first
    (vma_adjust_trans_huge() -> split_huge_pmd_if_needed())."""
    if addr & (PMD_SIZE - 1) and vma.mm.pmd(addr) is not None:
        from .huge_memory import split_huge_pmd
        split_huge_pmd(k, vma, addr)
    new = Vma(vma.mm, addr, vma.end, vma.read, vma.write, vma.shared, vma.file,
              vma.pgoff + ((addr - vma.start) // PAGE_SIZE), id=k.next_id())
    if vma.file is None:
        new.pgoff = vma.pgoff + ((addr - vma.start) // PAGE_SIZE)
    new.dontcopy, new.wipeonfork = vma.dontcopy, vma.wipeonfork
    new.hugepage, new.nohugepage = vma.hugepage, vma.nohugepage
    vma.end = addr
    anon_vma_clone_for_split(new, vma)
    vma.mm.insert_vma(new)
    if vma.file is not None:
        vma.file.i_mmap.append(new)
    return new


def vmas_covering(mm, start, end):
    """The VMAs of ``[start, end)``; ENOMEM when a hole leaves part of it
    unmapped (madvise() and mprotect() answer -ENOMEM for an unmapped part)."""
    vmas = mm.vmas_in(start, end)
    pos = start
    for vma in vmas:
        if vma.start > pos:
            break
        pos = vma.end
    if pos < end:
        raise KernelError("ENOMEM", f"range {start:#x}-{end:#x} is not fully mapped (hole at {pos:#x})")
    return vmas


def split_vma_range(k, mm, start, end, must_cover=True, want=None):
    """The VMAs exactly covering ``[start, end)``, splitting at the edges.

    With ``must_cover`` a hole in the range raises ENOMEM before anything
    is split.  (The kernel's mprotect() changes the VMAs before the hole and
    madvise() every mapped part before returning -ENOMEM; the model changes
    nothing, so that a failed call leaves the state as it was.)  ``want``,
    if given, selects the VMAs to split and return; the others are left
    whole (mprotect_fixup() returns early for a VMA whose flags would not
    change).
    """
    vmas = mm.vmas_in(start, end) if not must_cover else vmas_covering(mm, start, end)
    out = []
    for vma in vmas:
        if want is not None and not want(vma):
            continue
        if vma.start < start:
            vma = __split_vma(k, vma, start)
        if vma.end > end:
            __split_vma(k, vma, end)
        out.append(vma)
    return out


def remove_vma(k, vma):
    """Zap a VMA's pages and unlink it from the mm, the rmap and i_mmap
    (mm/vma.c: vms_clear_ptes() -> unmap_vmas(), free_pgtables(), remove_vma())."""
    n = zap_pte_range(k, vma, vma.start, vma.end, even_cows=True)
    # free_pgtables(): page tables the VMA alone covered go too, so a later
    # fault there sees pmd_none() again
    mm = vma.mm
    for key in range(vma.start >> 21, ((vma.end - 1) >> 21) + 1):
        table = mm.pgd.get(key)
        if table is not None and (key << 21) >= vma.start and ((key + 1) << 21) <= vma.end \
                and not any(table):
            del mm.pgd[key]
    unlink_anon_vmas(k, vma)
    if vma.file is not None:
        vma.file.i_mmap.remove(vma)
    vma.mm.remove_vma(vma)
    return n


def do_munmap(k, mm, start, npages):
    """mm/vma.c: do_vmi_munmap(): remove ``[start, start+npages)``; holes are
    fine, a range past TASK_SIZE is EINVAL ("start > TASK_SIZE || len >
    TASK_SIZE-start"), before anything changes."""
    if start > TASK_SIZE or npages * PAGE_SIZE > TASK_SIZE - start:
        raise KernelError("EINVAL", f"{start:#x} + {npages} page(s) ends past TASK_SIZE ({TASK_SIZE:#x}) "
                                    "(do_vmi_munmap())")
    end = start + npages * PAGE_SIZE
    n = 0
    vmas = split_vma_range(k, mm, start, end, must_cover=False)
    for vma in vmas:
        n += remove_vma(k, vma)
    k.trace.emit("do_munmap", f"{len(vmas)} VMA(s) removed", f"{n} PTE(s) zapped")


def exit_mmap(k, mm):
    """mm/mmap.c: exit_mmap(): tear the whole address space down."""
    n = 0
    for vma in list(mm.vmas):
        n += remove_vma(k, vma)
    mm.pgd.clear()
    k.trace.emit("exit_mmap", "address space torn down", f"{n} PTE(s) zapped")
