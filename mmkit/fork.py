"""fork(): duplicating an address space (dup_mmap(): kernel/fork.c, lately mm/mmap.c).

For every VMA of the parent: skip VM_DONTCOPY; give a VM_WIPEONFORK VMA an
empty child VMA; otherwise link the child VMA into the rmap
(anon_vma_fork()) and the file's i_mmap, and copy the page table
(copy_page_range()) when the parent VMA has an anon_vma (vma_needs_copy():
shared and never-written private file mappings simply fault in again).
"""

import gc

from .memory import copy_page_range
from .mm import Mm, Vma
from .rmap import anon_vma_fork

__all__ = ["dup_mmap"]


def vma_needs_copy(vma):
    """mm/memory.c: vma_needs_copy(): only a VMA with an anon_vma has PTEs
    that cannot be refaulted from the page cache."""
    return vma.anon_vma is not None


def dup_mmap(k, parent_mm, child_owner):
    """Build the child's mm from ``parent_mm`` (MMF_HAS_PINNED is not inherited)."""
    enabled = gc.isenabled()
    gc.disable()        # a big fork allocates a PTE per page and creates no garbage
    try:
        return _dup_mmap(k, parent_mm, child_owner)
    finally:
        if enabled:
            gc.enable()


def _dup_mmap(k, parent_mm, child_owner):
    mm = Mm(child_owner, parent_mm.mmap_base, k.alloc_mm_id())
    emit = k.trace.emit
    shared = copied = 0
    for pvma in parent_mm.vmas:
        if pvma.dontcopy:
            emit("dup_mmap", "skip VMA", f"VM_DONTCOPY (MADV_DONTFORK) at {pvma.start:#x}")
            continue
        vma = Vma(mm, pvma.start, pvma.end, pvma.read, pvma.write, pvma.shared, pvma.file,
                  pvma.pgoff, id=k.next_id())
        vma.wipeonfork = pvma.wipeonfork
        vma.hugepage, vma.nohugepage = pvma.hugepage, pvma.nohugepage
        mm.insert_vma(vma)
        if pvma.file is not None:
            pvma.file.i_mmap.append(vma)
        if pvma.wipeonfork:
            emit("dup_mmap", "empty child VMA", f"VM_WIPEONFORK at {pvma.start:#x}: no anon_vma, no PTEs")
            continue
        anon_vma_fork(k, vma, pvma)
        if vma_needs_copy(pvma):
            s, c = copy_page_range(k, vma, pvma)
            shared += s
            copied += c
        else:
            emit("copy_page_range", "skip", f"VMA at {pvma.start:#x} has no anon_vma: the child refaults")
    emit("dup_mmap", f"{shared} page(s) shared, {copied} copied", "")
    return mm
