"""cow.c's anonymous cases on large folios (tools/testing/selftests/mm/cow.c:
run_with_thp(), run_with_pte_mapped_thp(), run_with_single_pte_of_thp(),
run_with_partial_shared_thp() -> do_run_with_thp()).

The memory is one THP -- PMD-sized (2048 kB) or an mTHP size -- populated
as cow.c does: mmap() twice the size, align, MADV_HUGEPAGE, memset() the
whole folio.  Then:

* ``"pmd"`` -- "with THP": the PMD-mapped THP as it is;
* ``"pte"`` -- "with PTE-mapped THP": mprotect() one subpage R/O and back,
  which splits the PMD (a no-op for an mTHP, PTE-mapped already);
* ``"single_pte"`` -- "with single PTE of THP": MADV_DONTNEED all but the
  first page; the test runs on that one page;
* ``"partial_shared"`` -- "with partially shared THP": MADV_DONTFORK all but
  the first page, fork a child that exits at once, MADV_DOFORK again.

* cow.c's ``THP_RUN_PARTIAL_MREMAP`` ("with partially mremap()'ed THP"):
  :func:`mmkit.scenarios.cow_selftest.partial_mremap_thp_cases`, the upper
  half moved with MREMAP_MAYMOVE|MREMAP_FIXED, the cases run on the lower.

The swap-out variants are not here (no swap).
"""

from .cow_selftest import anon_cases, partial_mremap_thp_cases

__all__ = ["VARIANTS", "thp_cases", "THP_CASES", "MTHP_CASES"]

#: variant -> cow.c's name for it
VARIANTS = {"pmd": "THP", "pte": "PTE-mapped THP", "single_pte": "single PTE of THP",
            "partial_shared": "partially shared THP"}


def _populate(order, variant):
    nr = 1 << order
    size = nr * 4096
    kb = f"{size // 1024}kB"

    def populate(k, s):
        s.p = k.spawn("parent")
        if order != 9:
            k.thp.set(kb, "madvise")
        raw = s.p.mmap(2 * nr)
        s.a = (raw + size - 1) & ~(size - 1)
        s.p.madvise(s.a, nr, "hugepage")
        s.n, s.old, s.new = nr, b"\x01" * size, b"\xff" * size
        s.p.write(s.a, s.old)                          # memset(mem, 1, thpsize)
        if variant == "pte":
            s.p.mprotect(s.a + 4096, 1, "r")
            s.p.mprotect(s.a + 4096, 1, "rw")
        elif variant == "single_pte":
            s.p.madvise(s.a + 4096, nr - 1, "dontneed")
            s.n, s.old, s.new = 1, s.old[:4096], s.new[:4096]
        elif variant == "partial_shared":
            s.p.madvise(s.a + 4096, nr - 1, "dontfork")
            c = s.p.fork("sharer")
            c.exit()
            s.p.madvise(s.a + 4096, nr - 1, "dofork")
    what = {"pmd": "and write it whole: one PMD-mapped THP",
            "pte": "write it, then mprotect() one page R/O and back: the THP is PTE-mapped",
            "single_pte": "write it, then MADV_DONTNEED all but its first page: one PTE of the THP is left",
            "partial_shared": "write it, then share only its first page with a child that exits at once"}[variant]
    return ("populate", f"Map a {kb} THP (MADV_HUGEPAGE) {what}.", populate)


def thp_cases(variant="pmd", size="2048kB"):
    """cow.c's anonymous cases on a THP of ``size`` in ``variant`` (see the
    module docstring); the names end like cow.c's, e.g. ``"Basic COW after
    fork() ... with PTE-mapped THP (2048 kB)"``."""
    order = (int(size[:-2]) // 4).bit_length() - 1
    suffix = f" ... with {VARIANTS[variant]} ({int(size[:-2])} kB)"
    watch = [("parent", "p", "a"), ("child", "c", "a")]
    return anon_cases(_populate(order, variant), suffix, watch)


#: The PMD-sized THP in all four variants.
THP_CASES = [c for v in VARIANTS for c in thp_cases(v, "2048kB")] + partial_mremap_thp_cases(2048)
#: A 64 kB mTHP (PTE-mapped by nature: "pmd" would be the same as "pte").
MTHP_CASES = ([c for v in ("pte", "single_pte", "partial_shared") for c in thp_cases(v, "64kB")]
              + partial_mremap_thp_cases(64))
