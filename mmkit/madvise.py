"""madvise(): DONTNEED, DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK (mm/madvise.c)."""

from .errors import InvalidArgument, KernelError
from .memory import zap_pte_range
from .mmap import split_vma_range

__all__ = ["ADVICE", "do_madvise"]

ADVICE = ("dontneed", "dontfork", "dofork", "wipeonfork", "keeponfork", "hugepage", "nohugepage")


def do_madvise(k, mm, start, end, advice):
    """mm/madvise.c: do_madvise().

    * ``"dontneed"``: zap the range (zap_page_range_single()); anon memory
      reads back as zeros, file pages are refaulted from the page cache.
    * ``"dontfork"`` / ``"dofork"``: set / clear VM_DONTCOPY.
    * ``"wipeonfork"`` / ``"keeponfork"``: set / clear VM_WIPEONFORK; only
      private anonymous VMAs accept WIPEONFORK (EINVAL otherwise).
    * ``"hugepage"`` / ``"nohugepage"``: mm/khugepaged.c: hugepage_madvise():
      MADV_HUGEPAGE sets VM_HUGEPAGE and clears VM_NOHUGEPAGE, MADV_NOHUGEPAGE
      the reverse.  THPs already mapped stay as they are.

    A range with a hole fails with ENOMEM and, unlike the kernel (which
    advises the mapped parts first), changes nothing.
    """
    if advice not in ADVICE:
        raise InvalidArgument(f"unknown advice {advice!r}; expected one of {', '.join(ADVICE)}")
    vmas_before = mm.vmas_in(start, end)
    if advice == "wipeonfork":
        for vma in vmas_before:
            if vma.file is not None or vma.shared:
                raise KernelError("EINVAL", "MADV_WIPEONFORK works on private anonymous mappings only")
    vmas = split_vma_range(k, mm, start, end)
    n = 0
    for vma in vmas:
        if advice == "dontneed":
            n += zap_pte_range(k, vma, vma.start, vma.end, even_cows=True)
        elif advice in ("dontfork", "dofork"):
            vma.dontcopy = advice == "dontfork"
        elif advice in ("hugepage", "nohugepage"):
            vma.hugepage = advice == "hugepage"
            vma.nohugepage = not vma.hugepage
        else:
            vma.wipeonfork = advice == "wipeonfork"
    k.trace.emit("madvise_" + advice, f"{len(vmas)} VMA(s)",
                 f"{n} PTE(s) zapped" if advice == "dontneed" else "VMA flags changed")
