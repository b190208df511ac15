"""The address space: Mm, Vma, and the page table with its entries.

models include/linux/mm_types.h: struct mm_struct, struct vm_area_struct,
and the page table (arch pte_t).  The page table is kept the way the
hardware keeps it: a table of 512 entries per 2 MiB (one PTE page per PMD
slot), so a sparse address space costs little and fork copies it table by
table.
"""

import bisect

from .errors import InvalidArgument, KernelError
from .pageinfo import PAGE_SIZE

__all__ = ["Pte", "Pmd", "PmdPte", "MigrationEntry", "Vma", "Mm", "TASK_SIZE", "PTRS_PER_PTE", "PAGE_SHIFT",
           "PMD_SIZE", "is_cow_mapping"]

PAGE_SHIFT = 12
PTRS_PER_PTE = 512
_PMD_SHIFT = PAGE_SHIFT + 9
#: arch/x86/include/asm/pgtable_64_types.h: PMD_SIZE, 2 MiB (HPAGE_PMD_SIZE).
PMD_SIZE = 1 << _PMD_SHIFT


class Pte:
    """A present page-table entry.

    Attributes
    ----------
    folio : Folio
        The page it maps (the shared zero page for a special zero-page PTE).
    write : bool
        pte_write(): a store does not fault.
    dirty : bool
        pte_dirty().
    """

    __slots__ = ("folio", "write", "dirty")
    present = True
    #: pmd_trans_huge(): False for a PTE (see :class:`PmdPte`).
    huge = False

    def __init__(self, folio, write, dirty):
        self.folio = folio
        self.write = write
        self.dirty = dirty

    def __repr__(self):
        return f"<Pte pfn={self.folio.pfn} {'W' if self.write else 'R/O'}{' D' if self.dirty else ''}>"


class Pmd:
    """A present PMD mapping a whole PMD-sized folio (pmd_trans_huge()).

    It sits in the page directory where a PTE table would
    (``Mm.pgd[addr >> 21]``).  Indexing it like a PTE table gives a
    :class:`PmdPte` view of one 4 KiB page, so code that only reads PTEs
    (the CPU's walk, ``Mm.pte()``, dumps) sees the PMD as 512 entries.

    Attributes
    ----------
    folio : LargeFolio
        The order-9 folio (pmd_folio()).
    write, dirty : bool
        pmd_write(), pmd_dirty().
    """

    __slots__ = ("folio", "write", "dirty")
    present = True
    huge = True

    def __init__(self, folio, write, dirty):
        self.folio = folio
        self.write = write
        self.dirty = dirty

    def __getitem__(self, i):
        return PmdPte(self, i)

    def __repr__(self):
        return f"<Pmd pfn={self.folio.pfn} {'W' if self.write else 'R/O'}{' D' if self.dirty else ''}>"


class PmdPte:
    """One 4 KiB page of a :class:`Pmd` seen as if it were a PTE: ``folio``
    is the :class:`~mmkit.folio.Page`, ``write`` and ``dirty`` are the PMD's."""

    __slots__ = ("pmd", "folio")
    present = True
    huge = True

    def __init__(self, pmd, i):
        self.pmd = pmd
        self.folio = pmd.folio.pages[i]

    @property
    def write(self):
        return self.pmd.write

    @write.setter
    def write(self, v):
        self.pmd.write = v

    @property
    def dirty(self):
        return self.pmd.dirty

    @dirty.setter
    def dirty(self, v):
        self.pmd.dirty = v

    def __repr__(self):
        return f"<PmdPte pfn={self.folio.pfn} of {self.pmd!r}>"


class MigrationEntry:
    """A non-present entry left by try_to_migrate_one() (mm/rmap.c).

    ``kind`` is ``"writable"``, ``"readable_exclusive"`` or ``"readable"``
    (make_*_migration_entry()); remove_migration_pte() turns it back into a
    present PTE and, for the first two kinds, sets PageAnonExclusive on the
    new page.  A fault on it waits for migration to end.
    """

    __slots__ = ("folio", "kind", "dirty")
    present = False
    huge = False

    def __init__(self, folio, kind, dirty):
        self.folio = folio
        self.kind = kind
        self.dirty = dirty

    def __repr__(self):
        return f"<MigrationEntry pfn={self.folio.pfn} {self.kind}>"


class Vma:
    """A virtual memory area: ``[start, end)`` with one set of flags.

    Attributes
    ----------
    start, end : int
        Page-aligned byte addresses.
    read, write : bool
        VM_READ, VM_WRITE (the current protection).
    shared : bool
        VM_SHARED (MAP_SHARED); VM_MAYWRITE is always set in the model, so
        a private VMA is a COW mapping (is_cow_mapping()).
    file : File or None
        The mapped file (shmem for MAP_SHARED|MAP_ANONYMOUS), or None.
    pgoff : int
        vm_pgoff: file offset in pages; for anon ``start >> PAGE_SHIFT`` of
        the mmap() that made it (a split, fork or mremap() keeps the pages'
        offsets, so a moved anon VMA's pgoff no longer matches its start).
    anon_vma : AnonVma or None
        The VMA's own anon_vma, where its new anon pages point.
    anon_vma_chain : list of AnonVmaChain
        Links to every anon_vma whose pages this VMA may map.
    dontcopy, wipeonfork : bool
        VM_DONTCOPY (MADV_DONTFORK), VM_WIPEONFORK (MADV_WIPEONFORK).
    hugepage, nohugepage : bool
        VM_HUGEPAGE (MADV_HUGEPAGE), VM_NOHUGEPAGE (MADV_NOHUGEPAGE).
    """

    __slots__ = ("mm", "start", "end", "read", "write", "shared", "file", "pgoff",
                 "anon_vma", "anon_vma_chain", "dontcopy", "wipeonfork", "id", "hugepage", "nohugepage")

    def __init__(self, mm, start, end, read, write, shared, file=None, pgoff=None, id=0):
        self.mm = mm
        self.start = start
        self.end = end
        self.read = read
        self.write = write
        self.shared = shared
        self.file = file
        # a new anon VMA: vm_pgoff = vm_start >> PAGE_SHIFT (do_mmap()); a copy
        # (fork's vm_area_dup(), mremap's copy_vma()) passes the pgoff it keeps
        self.pgoff = pgoff if pgoff is not None else 0 if file is not None else start >> PAGE_SHIFT
        self.anon_vma = None
        self.anon_vma_chain = []
        self.dontcopy = False
        self.wipeonfork = False
        self.id = id
        self.hugepage = False
        self.nohugepage = False

    @property
    def npages(self):
        return (self.end - self.start) >> PAGE_SHIFT

    @property
    def prot(self):
        """The protection as the API spells it: "rw", "r" or "none"."""
        return "rw" if self.write else "r" if self.read else "none"

    def linear_page_index(self, addr):
        """include/linux/pagemap.h: linear_page_index(): the folio index of ``addr``."""
        return self.pgoff + ((addr - self.start) >> PAGE_SHIFT)

    def vma_address(self, index):
        """mm/internal.h: vma_address(): where page ``index`` sits, or None."""
        addr = self.start + ((index - self.pgoff) << PAGE_SHIFT)
        return addr if self.start <= addr < self.end else None

    def __repr__(self):
        kind = f"file {self.file.name}" if self.file is not None else "anon"
        return (f"<Vma {self.start:#x}-{self.end:#x} {self.prot} {'shared' if self.shared else 'private'}"
                f" {kind}>")


def is_cow_mapping(vma):
    """include/linux/mm.h: is_cow_mapping(): private and may be written."""
    return not vma.shared


#: x86-64 with 4-level page tables: user addresses end below 128 TiB
#: (arch/x86/include/asm/page_64_types.h: TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE)
TASK_SIZE = (1 << 47) - PAGE_SIZE


class Mm:
    """An address space (struct mm_struct): its VMAs and its page table.

    Attributes
    ----------
    vmas : list of Vma
        Sorted by start address (the kernel keeps a maple tree).
    pgd : dict
        ``addr >> 21`` -> list of 512 entries (None, Pte or MigrationEntry).
    has_pinned : bool
        MMF_HAS_PINNED: set by the first FOLL_PIN and kept for the mm's life
        (mm/gup.c: mm_set_has_pinned_flag()); not inherited by fork.
    mm_id : int
        ``mm->mm_id`` (v6.15, CONFIG_MM_ID): allocated by mm_id_alloc() from
        an IDA, the smallest free id >= MM_ID_MIN (1), freed when the mm goes.
    """

    def __init__(self, owner, mmap_base, mm_id=1):
        self.mm_id = mm_id
        self.owner = owner
        self.vmas = []
        self._starts = []
        self.pgd = {}
        self._last = None
        self.has_pinned = False
        self.mmap_base = mmap_base

    # -- VMAs -------------------------------------------------------------
    def find_vma(self, addr):
        """The VMA containing ``addr``, or None (mm/mmap.c: find_vma() + range check).

        Like the kernel's old per-thread vmacache, the last VMA found is
        tried first."""
        vma = self._last
        if vma is not None and vma.start <= addr < vma.end:
            return vma
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            vma = self.vmas[i]
            if addr < vma.end:
                self._last = vma
                return vma
        return None

    def insert_vma(self, vma):
        self._last = None
        i = bisect.bisect_left(self._starts, vma.start)
        self.vmas.insert(i, vma)
        self._starts.insert(i, vma.start)

    def remove_vma(self, vma):
        self._last = None
        i = self.vmas.index(vma)
        del self.vmas[i]
        del self._starts[i]

    def get_unmapped_area(self, npages, thp_align=False):
        """A free range for ``npages``, leaving a one-page gap so that
        neighbouring mappings stay separate VMAs (the model does not merge).

        The model hands out addresses bottom-up from ``mmap_base`` and never
        past ``TASK_SIZE`` (the top of the 47-bit x86-64 user address space,
        128 TiB); when no range fits it fails with ENOMEM, as the kernel's
        ``__get_unmapped_area()`` (mm/mmap.c) does, and changes nothing.
        """
        start = self.mmap_base
        if thp_align:
            # mm/huge_memory.c: thp_get_unmapped_area_vmflags(): a PMD-aligned start
            start = (start + PMD_SIZE - 1) & ~(PMD_SIZE - 1)
        if npages > (TASK_SIZE - start) // PAGE_SIZE:
            raise KernelError("ENOMEM", f"no free range of {npages} pages below TASK_SIZE "
                                        f"({TASK_SIZE:#x}, the top of the 47-bit user address space); "
                                        f"{(TASK_SIZE - start) // PAGE_SIZE} pages are left above {start:#x}")
        self.mmap_base = start + (npages + 1) * PAGE_SIZE
        return start

    def covered_until(self, start, end):
        """The first address in ``[start, end)`` that no VMA maps, or ``end``.

        Walks VMAs, not pages, so its cost follows what is mapped however
        large the range asked for."""
        pos = start
        while pos < end:
            vma = self.find_vma(pos)
            if vma is None:
                return pos
            pos = vma.end
        return end

    def vmas_in(self, start, end):
        """The VMAs overlapping ``[start, end)``."""
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        out = []
        for vma in self.vmas[i:]:
            if vma.start >= end:
                break
            if vma.end > start:
                out.append(vma)
        return out

    # -- page table -------------------------------------------------------
    def pmd(self, addr):
        """The :class:`Pmd` mapping ``addr``, or None (a PTE table or pmd_none)."""
        table = self.pgd.get(addr >> _PMD_SHIFT)
        return table if type(table) is Pmd else None

    def pte(self, addr):
        """The entry for ``addr``: a Pte, a MigrationEntry, a PmdPte view of a
        PMD mapping, or None (pte_none)."""
        table = self.pgd.get(addr >> _PMD_SHIFT)
        if table is None:
            return None
        return table[(addr >> PAGE_SHIFT) & 511]

    def set_pte(self, addr, entry):
        """Install ``entry`` (or None to clear) for ``addr`` (set_pte_at())."""
        key = addr >> _PMD_SHIFT
        table = self.pgd.get(key)
        if table is None:
            if entry is None:
                return
            table = self.pgd[key] = [None] * PTRS_PER_PTE
        table[(addr >> PAGE_SHIFT) & 511] = entry

    def ptes(self, start, end):
        """Yield ``(addr, entry)`` for the non-empty entries in ``[start, end)``."""
        for base, table, i0, i1 in self.tables(start, end):
            for i in range(i0, i1):
                e = table[i]
                if e is not None:
                    yield base + (i << PAGE_SHIFT), e

    def tables(self, start, end):
        """Yield ``(base_addr, table, i0, i1)`` covering ``[start, end)`` (for fast loops)."""
        addr = start
        while addr < end:
            key = addr >> _PMD_SHIFT
            table_end = min(end, (key + 1) << _PMD_SHIFT)
            table = self.pgd.get(key)
            if table is not None:
                i0 = (addr >> PAGE_SHIFT) & 511
                yield key << _PMD_SHIFT, table, i0, i0 + ((table_end - addr) >> PAGE_SHIFT)
            addr = table_end


def check_range(addr, npages, what="address"):
    """Validate a user range; raise InvalidArgument naming what is wrong."""
    if not isinstance(addr, int) or isinstance(addr, bool):
        raise InvalidArgument(f"{what} must be an int, not {type(addr).__name__}")
    if addr < 0 or addr % PAGE_SIZE:
        raise InvalidArgument(f"{what} {addr:#x} is not page-aligned (PAGE_SIZE is {PAGE_SIZE})")
    if not isinstance(npages, int) or isinstance(npages, bool):
        raise InvalidArgument(f"npages must be an int, not {type(npages).__name__}")
    if npages <= 0:
        raise InvalidArgument(f"npages must be positive, not {npages}")
