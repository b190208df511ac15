"""madvise(): DONTNEED, DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK, HUGEPAGE/NOHUGEPAGE and
COLLAPSE (mm/madvise.c; MADV_COLLAPSE in :mod:`mmkit.khugepaged`)."""

from .errors import InvalidArgument, KernelError
from .memory import zap_pte_range
from .mmap import split_vma_range

__all__ = ["ADVICE", "do_madvise"]

ADVICE = ("dontneed", "dontfork", "dofork", "wipeonfork", "keeponfork", "hugepage", "nohugepage", "collapse")


def do_madvise(k, mm, start, end, advice):
    """mm/madvise.c: do_madvise().

    * ``"dontneed"``: zap the range (madvise_dontneed_free() ->
      zap_page_range_single()); anon memory reads back as zeros, file pages
      are refaulted from the page cache.  No VMA is split: the advice
      changes no VMA flag.
    * ``"dontfork"`` / ``"dofork"``: set / clear VM_DONTCOPY.
    * ``"wipeonfork"`` / ``"keeponfork"``: set / clear VM_WIPEONFORK; only
      private anonymous VMAs accept WIPEONFORK (EINVAL otherwise).
    * ``"hugepage"`` / ``"nohugepage"``: mm/khugepaged.c: hugepage_madvise():
      MADV_HUGEPAGE sets VM_HUGEPAGE and clears VM_NOHUGEPAGE, MADV_NOHUGEPAGE
      the reverse.  THPs already mapped stay as they are.
    * ``"collapse"``: MADV_COLLAPSE (v6.1): collapse every PMD-aligned 2 MiB
      of the range into a new PMD-mapped THP now, whatever the sysfs policy
      (:func:`mmkit.khugepaged.do_madvise_collapse`); EINVAL in eras before
      v6.1.  It changes no VMA flag, so no VMA is split; a failure after
      some ranges were collapsed leaves them collapsed, as the kernel does
      (:class:`mmkit.khugepaged.MadvCollapseError`).

    A range with a hole fails with ENOMEM and, unlike the kernel (which
    advises the mapped parts first), changes nothing.
    """
    if advice not in ADVICE:
        raise InvalidArgument(f"unknown advice {advice!r}; expected one of {', '.join(ADVICE)}")
    if advice == "collapse":
        from .khugepaged import do_madvise_collapse
        do_madvise_collapse(k, mm, start, end)
        return
    vmas_before = mm.vmas_in(start, end)
    if advice == "wipeonfork":
        for vma in vmas_before:
            if vma.file is not None or vma.shared:
                raise KernelError("EINVAL", "MADV_WIPEONFORK works on private anonymous mappings only")
    if advice == "dontneed":
        # madvise_dontneed_free() zaps the range and changes no VMA flag, so
        # no VMA is split (only madvise_update_vma() splits)
        vmas = split_vma_range(k, mm, start, end, want=lambda vma: False) or vmas_before
    else:
        vmas = split_vma_range(k, mm, start, end)
    n = 0
    for vma in vmas:
        if advice == "dontneed":
            n += zap_pte_range(k, vma, max(start, vma.start), min(end, vma.end), even_cows=True)
        elif advice in ("dontfork", "dofork"):
            vma.dontcopy = advice == "dontfork"
        elif advice in ("hugepage", "nohugepage"):
            vma.hugepage = advice == "hugepage"
            vma.nohugepage = not vma.hugepage
        else:
            vma.wipeonfork = advice == "wipeonfork"
    k.trace.emit("madvise_" + advice, f"{len(vmas)} VMA(s)",
                 f"{n} PTE(s) zapped" if advice == "dontneed" else "VMA flags changed")
