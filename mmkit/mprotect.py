"""mprotect(): changing a range's protection (mm/mprotect.c)."""

from .mm import Pmd
from .mmap import split_vma_range

__all__ = ["mprotect_fixup", "change_protection", "can_change_pte_writable"]


def can_change_pte_writable(k, vma, pte):
    """mm/mprotect.c: can_change_pte_writable(): may mprotect() make this
    read-only PTE writable without waiting for a write fault?

    Private mapping: only an anon page with PageAnonExclusive -- dirty ones
    since v6.0 (64fe24a3e05e), clean ones too since v6.2.  Shared mapping:
    a PTE already dirty (write notification done).  Before v6.0 private
    anon PTEs always stay read-only and take the next write fault.
    """
    if not vma.write:
        return False
    folio = pte.folio
    if vma.shared:
        return pte.dirty
    rule = k.era.mprotect_upgrade
    if rule == "none" or folio.zero or not folio.anon or not folio.anon_exclusive:
        return False
    return rule == "exclusive" or pte.dirty


def change_protection(k, vma):
    """mm/mprotect.c: change_protection() -> change_pte_range() over one VMA.

    Removing write write-protects every PTE.  Adding write upgrades the PTEs
    can_change_pte_writable() allows (MM_CP_TRY_CHANGE_WRITABLE); a shared
    mapping without write notification (shmem) gets writable PTEs from its
    new vm_page_prot directly.  A PMD goes to change_huge_pmd() (the VMA
    edges were split first, so the PMD lies inside the VMA).
    """
    protected = upgraded = 0
    for base, table, i0, i1 in vma.mm.tables(vma.start, vma.end):
        if type(table) is Pmd:
            from .huge_memory import change_huge_pmd
            a, b = change_huge_pmd(k, vma, table)
            protected += a
            upgraded += b
            continue
        for i in range(i0, i1):
            e = table[i]
            if e is None or not e.present:
                continue
            if not vma.write:
                if e.write:
                    e.write = False
                    protected += 1
            elif not e.write:
                if (vma.shared and vma.file.shmem) or can_change_pte_writable(k, vma, e):
                    e.write = True
                    upgraded += 1
    return protected, upgraded


def mprotect_fixup(k, mm, start, end, read, write):
    """mm/mprotect.c: do_mprotect_pkey() -> mprotect_fixup() for each VMA.

    A VMA whose protection would not change is left alone, PTEs included
    (mprotect_fixup() returns at once when newflags == oldflags).
    """
    vmas = split_vma_range(k, mm, start, end, want=lambda v: (v.read, v.write) != (read, write))
    p = u = 0
    for vma in vmas:
        vma.read, vma.write = read, write
        a, b = change_protection(k, vma)
        p += a
        u += b
    k.trace.emit("change_protection", f"{p} PTE(s) write-protected, {u} made writable",
                 f"{'rw' if write else 'r' if read else 'none'} on {len(vmas)} VMA(s)"
                 + (f"; upgrade rule {k.era.mprotect_upgrade!r}" if write else ""))
