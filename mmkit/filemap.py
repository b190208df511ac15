"""Files, the page cache, and truncation (mm/filemap.c, mm/truncate.c).

A :class:`File` is an inode with its address_space: a size, a page cache
(``index -> folio``) and ``i_mmap``, the VMAs that map it.  ``shmem=True``
models tmpfs/memfd (and MAP_SHARED|MAP_ANONYMOUS memory); ``shmem=False`` a
disk file system such as ext4, whose shared writable mappings need write
notification and refuse long-term writable pins.

shmem has its own entry points (mm/shmem.c), with the same outcome:

* fault: ``vma->vm_ops->fault`` is shmem_fault() -> shmem_get_folio_gfp()
  (shmem_getpage_gfp() up to v5.19), which returns -EINVAL for an index at
  or beyond i_size (SGP_CACHE), turned into VM_FAULT_SIGBUS by vmf_error();
  a disk file's is filemap_fault().  Both use filemap_map_pages() for
  fault-around.
* truncation: ftruncate() reaches shmem_setattr(), which writes i_size and,
  when whole pages lie beyond the new size, runs unmap_mapping_range(...,
  even_cows=1), shmem_truncate_range(), and unmap_mapping_range() again
  ("unmap again to remove racily COWed private pages"); a disk file system's
  ->setattr calls truncate_setsize() -> truncate_pagecache().
"""

from .era import kernel_name
from .errors import SIGBUS
from .folio import page_read, page_write
from .pageinfo import PAGE_SIZE

__all__ = ["File", "filemap_fault", "shmem_fault", "vma_fault", "fault_handler_name", "filemap_get_folio",
           "do_truncate", "truncate_setsize", "shmem_setattr", "truncate_inode_pages_range"]


class File:
    """An inode and its address_space.

    Attributes
    ----------
    name : str
    size : int
        i_size in bytes.
    shmem : bool
        tmpfs/memfd (no write notification; long-term writable pins allowed
        in every era).
    pages : dict
        The page cache: index -> Folio (each holds one page-cache reference).
    i_mmap : list of Vma
        Every VMA mapping the file (the kernel's interval tree).
    """

    def __init__(self, id, name, npages, shmem):
        self.id = id
        self.name = name
        self.size = npages * PAGE_SIZE
        self.shmem = shmem
        self.pages = {}
        self.i_mmap = []

    @property
    def npages(self):
        """DIV_ROUND_UP(i_size, PAGE_SIZE): pages that exist."""
        return -(-self.size // PAGE_SIZE)

    def __repr__(self):
        return f"<File {self.name!r} {self.npages} pages, {len(self.pages)} cached{' shmem' if self.shmem else ''}>"


def filemap_get_folio(k, file, index):
    """mm/filemap.c: __filemap_get_folio(FGP_CREAT): the page-cache folio at
    ``index``, read in (zero-filled here) if absent.  The page cache holds
    one reference."""
    folio = file.pages.get(index)
    if folio is None:
        folio = k.alloc_folio()
        folio.mapping = file
        folio.index = index
        file.pages[index] = folio
        k.trace.emit(kernel_name(k.era, "shmem_get_folio_gfp" if file.shmem else "filemap_add_folio"),
                     f"page {index} of {file.name} added to the page cache", "not cached yet", folio.pfn)
    return folio


def fault_handler_name(file):
    """The file's ``vm_ops->fault``: ``"shmem_fault"`` or ``"filemap_fault"``."""
    return "shmem_fault" if file.shmem else "filemap_fault"


def filemap_fault(k, vma, addr):
    """mm/filemap.c: filemap_fault(): the page-cache folio for a fault, or
    VM_FAULT_SIGBUS when the page lies at or beyond EOF."""
    file = vma.file
    index = vma.linear_page_index(addr)
    if index >= file.npages:
        k.trace.emit("filemap_fault", "VM_FAULT_SIGBUS", f"page {index} is beyond EOF ({file.npages} pages)")
        raise SIGBUS(f"page {index} of {file.name!r} is beyond EOF ({file.npages} pages)", addr)
    return filemap_get_folio(k, file, index)


def shmem_fault(k, vma, addr):
    """mm/shmem.c: shmem_fault() -> shmem_get_folio_gfp(SGP_CACHE): the
    folio, or -EINVAL at or beyond i_size, which vmf_error() turns into
    VM_FAULT_SIGBUS."""
    file = vma.file
    index = vma.linear_page_index(addr)
    if index >= file.npages:
        k.trace.emit("shmem_fault", "VM_FAULT_SIGBUS",
                     f"{kernel_name(k.era, 'shmem_get_folio_gfp')}() returns -EINVAL: page {index} is beyond "
                     f"i_size ({file.npages} pages)")
        raise SIGBUS(f"page {index} of {file.name!r} is beyond EOF ({file.npages} pages)", addr)
    return filemap_get_folio(k, file, index)


def vma_fault(k, vma, addr):
    """mm/memory.c: __do_fault() -> ``vma->vm_ops->fault``: shmem_fault()
    for shmem, filemap_fault() for a disk file."""
    return (shmem_fault if vma.file.shmem else filemap_fault)(k, vma, addr)


def file_read(k, file, off, n):
    """read(2)/pread(2) through the page cache (filemap_read()); stops at EOF."""
    n = max(0, min(n, file.size - off))
    out = bytearray()
    while n > 0:
        index, o = divmod(off, PAGE_SIZE)
        c = min(n, PAGE_SIZE - o)
        out += page_read(filemap_get_folio(k, file, index).data, o, c)
        off += c
        n -= c
    return bytes(out)


def file_write(k, file, off, data):
    """write(2)/pwrite(2) through the page cache (generic_perform_write());
    extends i_size when writing past EOF.  Mapped pages see the data at once."""
    file.size = max(file.size, off + len(data))
    pos = 0
    while pos < len(data):
        index, o = divmod(off + pos, PAGE_SIZE)
        c = min(len(data) - pos, PAGE_SIZE - o)
        folio = filemap_get_folio(k, file, index)
        folio.data = page_write(folio.data, o, data[pos:pos + c])
        folio.dirty = True
        pos += c


def truncate_inode_pages_range(k, file, first_index, func="truncate_inode_pages_range"):
    """mm/truncate.c: truncate_inode_pages_range(): remove page-cache folios
    from ``first_index`` on (``func``: the name shown in the trace;
    shmem_truncate_range() -> shmem_undo_range() removes them the same way).

    truncate_cleanup_folio() unmaps a folio only if folio_mapped() (the
    "not mapped, skip the rmap walk" shortcut); then the folio leaves the
    page cache (mapping = NULL) and the cache's reference is dropped.  A
    folio still pinned or referenced is not freed: it lives on as an orphan
    that only the pin can see.
    """
    from .memory import folio_put, zap_pte_range
    removed = orphans = 0
    indices = sorted(i for i in file.pages if i >= first_index)
    # said first, so that the frees and orphans print after it, in kernel order
    k.trace.emit(func, f"remove {len(indices)} page(s)", f"page-cache folios from index {first_index}")
    for index in indices:
        folio = file.pages.pop(index)
        if folio.mapcount:
            for vma in list(file.i_mmap):
                addr = vma.vma_address(index)
                if addr is not None:
                    zap_pte_range(k, vma, addr, addr + PAGE_SIZE, even_cows=False)
        folio.mapping = None
        removed += 1
        folio_put(k, folio)
        if folio.refcount:
            orphans += 1
            k.trace.emit(func, "orphaned",
                         f"page {index} left the page cache but refcount {folio.refcount} "
                         f"(pincount {folio.pincount}) keeps it alive", folio.pfn)
    k.trace.emit(func, f"{removed} page(s) removed",
                 f"{orphans} still referenced (orphans)")


def do_truncate(k, file, npages):
    """fs/open.c: do_truncate() -> notify_change() -> ``inode->i_op->setattr``:
    shmem_setattr() for shmem, else (ext4_setattr()...) truncate_setsize()."""
    (shmem_setattr if file.shmem else truncate_setsize)(k, file, npages)


def shmem_setattr(k, file, npages):
    """mm/shmem.c: shmem_setattr() with ATTR_SIZE.

    i_size_write() first; when whole pages lie beyond the new size
    (oldsize > holebegin): unmap_mapping_range(holebegin, 0, even_cows=1),
    shmem_truncate_range(), then unmap_mapping_range() again to catch COW
    copies made in between.  Same outcome as truncate_setsize(): later
    access beyond EOF is SIGBUS (shmem_fault()).
    """
    from .memory import unmap_mapping_range
    old = file.npages
    file.size = npages * PAGE_SIZE
    if npages >= old:
        k.trace.emit("shmem_setattr", f"extend to {npages} pages", "i_size_write(); new pages read as zeros")
        return
    k.trace.emit("shmem_setattr", f"shrink to {npages} pages", "i_size_write(), then unmap, truncate, unmap")
    unmap_mapping_range(k, file, npages, even_cows=True)
    truncate_inode_pages_range(k, file, npages, func="shmem_truncate_range")
    unmap_mapping_range(k, file, npages, even_cows=True)


def truncate_setsize(k, file, npages):
    """mm/truncate.c: truncate_setsize() -> truncate_pagecache() (a disk
    file system's ->setattr; shmem uses :func:`shmem_setattr`).

    Write i_size first; when shrinking, unmap_mapping_range(even_cows=1)
    zaps page-cache PTEs *and* private COW copies beyond the new EOF, then
    truncate_inode_pages() removes the folios, then a second
    unmap_mapping_range() catches COW copies made in between.  Later access
    beyond EOF raises SIGBUS.
    """
    from .memory import unmap_mapping_range
    old = file.npages
    file.size = npages * PAGE_SIZE
    if npages >= old:
        k.trace.emit("truncate_setsize", f"extend to {npages} pages", "new pages read as zeros")
        return
    k.trace.emit("truncate_setsize", f"shrink to {npages} pages",
                 "i_size_write(), then truncate_pagecache(): unmap, truncate, unmap")
    unmap_mapping_range(k, file, npages, even_cows=True)
    truncate_inode_pages_range(k, file, npages)
    unmap_mapping_range(k, file, npages, even_cows=True)
