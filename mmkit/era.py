"""Kernel eras: the rules that changed between kernels, as data.

An era is a small frozen object.  The fault, fork, GUP and mprotect paths
ask it questions instead of branching on version numbers, so each era's
behaviour -- bugs included -- comes out of the same code.  Each rule below
names the kernel source and commit it follows; small anonymous pages, no
swap, no KSM.

Names change too: :func:`kernel_name` gives the name a kernel function had
in the era shown (``try_to_unmap_one()`` under 5.9, ``try_to_migrate_one()``
from v5.14), so a trace names the function a reader finds in that kernel's
``mm/``.

Known simplifications (behaviour of the real kernels the presets do not
model):

* Migration is synchronous and its failures deterministic, so every retry
  pass fails like the first; :mod:`mmkit.migrate` counts the passes and
  tells, per era, whether the folio stayed unmapped between them
  (``migrate_batch``), but no other process can run in that window.
* ``move_pages(2)`` errnos are those of today's add_folio_for_migration()
  (no VMA: -EFAULT, no page: -ENOENT, zero page: -EFAULT) in every era.
  v5.10's add_page_for_migration() looked the page up with
  follow_page(FOLL_GET | FOLL_DUMP), whose answer for a never-touched
  address came from no_page_table(); the model does not reproduce such
  older answers.
* A v6.0 kernel (mprotect() upgrades dirty exclusive anon PTEs only) is
  available as ``era("6.0")`` but is not in :data:`ERAS`, the presets the
  era tables iterate over.

Flip one rule of a preset to see what it does::

    >>> from mmkit.era import era
    >>> e = era("6.18").replace(gup_unshares_anon=False)
    >>> e.name
    '6.18*'
    >>> e.gup_unshares_anon
    False
"""

from dataclasses import dataclass, fields, replace as _replace
from functools import cached_property, lru_cache

from .errors import InvalidArgument

__all__ = ["Era", "ERAS", "era", "DEFAULT_ERA", "kernel_name", "KERNEL_NAMES"]

DEFAULT_ERA = "6.18"

_REUSE_RULES = ("mapcount", "refcount")
_MPROTECT_RULES = ("none", "dirty", "exclusive")
_THP_COW_RULES = ("copy_huge", "split_mapcount", "split_exclusive")
_LARGE_REUSE_RULES = ("mapcount", "refcount", "never", "mm_id")
_HUGE_ZERO_WP_RULES = ("thp_if_enabled", "split", "thp")


@dataclass(frozen=True)
class Era:
    """The rules of one kernel era.

    Attributes
    ----------
    name : str
        The preset's name (``"5.7"``...); a flipped rule appends ``*``.
    reuse_rule : {"mapcount", "refcount"}
        How ``do_wp_page()`` decides to reuse a non-exclusive anon page on a
        write fault.  ``"mapcount"``: reuse iff mapcount (+ swap count) == 1,
        the refcount ignored (mm/memory.c: do_wp_page() -> reuse_swap_page(),
        up to v5.8; the root of CVE-2020-29374).  ``"refcount"``: reuse iff
        the only reference is our own mapping (09854ba94c6a "mm: do_wp_page()
        simplification", v5.9; today wp_can_reuse_anon_folio()).
    gup_breaks_cow : bool
        A read GUP or pin on a COW mapping is taken as a write fault first
        (mm/gup.c: should_force_cow_break(), 17839856fd58, v5.8 only;
        reverted by a308c71bf1e6 in v5.9).
    fork_copies_maybe_pinned : bool
        fork copies an anon page at once for the child when the parent mm has
        pinned and folio_maybe_dma_pinned() holds (70e806e4e645 "mm: Do early
        cow for pinned pages during fork() for ptes", v5.9; today
        copy_present_ptes() -> copy_present_page()).
    anon_exclusive : bool
        PageAnonExclusive exists: set on fresh and reused anon pages, cleared
        by fork (folio_try_dup_anon_rmap_pte()), and an AE page is reused on
        a write fault without looking at counters (6c287605fd56, v5.19).
    gup_unshares_anon : bool
        A FOLL_PIN without FOLL_WRITE on an anon page that is not AE first
        takes a FAULT_FLAG_UNSHARE fault (mm/internal.h: gup_must_unshare(),
        a7f226604170 / c89357e27f20, v5.19).
    unshare_longterm_cow : bool
        A FOLL_LONGTERM R/O pin of a non-anon page (page cache, zero page) in
        a COW mapping unshares too (8d6a0ac09a16 "mm: extend
        FAULT_FLAG_UNSHARE support to anything in a COW mapping", v6.2).
    reuse_moves_anon_rmap : bool
        A reused anon page is moved to the faulting VMA's own anon_vma
        (folio_move_anon_rmap()): in the mapcount era (do_wp_page() called
        page_move_anon_rmap() when the page was mapped once) and again from
        v5.19 (6c54dc6c7437); v5.9's simplified do_wp_page() (09854ba94c6a)
        dropped it, so 5.9-5.18 leave the page on the parent's anon_vma.
    zero_page_pinned : bool
        FOLL_PIN on the shared zero page adds the pin bias like on any page.
        Since v6.5 (c8070b787519 "mm: Don't pin ZERO_PAGE in
        pin_user_pages()") the zero page is never pinned: no counter moves.
    longterm_file_pin_refused : bool
        A FOLL_LONGTERM writable pin of a shared file mapping that needs
        dirty tracking (ext4, not shmem) fails with -EFAULT
        (mm/gup.c: writable_file_mapping_allowed(), 8ac268436e6d /
        a6e79df92e4a, v6.5).  Before, the pin was taken, and the file system
        could later find a page dirtied behind its back.
    fork_copies_pinned_cache : bool
        The fork copy of a maybe-pinned page applies to page-cache pages
        of a private mapping too: mainline copy_present_page() (v5.9-v5.18,
        70e806e4e645) tested is_cow_mapping(), mm->has_pinned and
        page_maybe_dma_pinned() but not PageAnon(), so the child got an
        anon copy of a pinned page-cache page.  v5.19 (fb3d824d1a46,
        page_try_dup_anon_rmap()) limited the copy to anon pages; the
        PageAnon() test reached 5.10.y/5.15.y only as a stable backport
        (Oct 2022, "Fixes: 70e806e4e645").
    migrate_batch : bool
        Migration retries keep a folio unmapped (v6.3+, Huang Ying's
        "migrate_pages: batch _unmap and _move" series): mm/migrate.c:
        migrate_pages_batch() unmaps first (migrate_folio_unmap()), then
        retries only the move (migrate_folio_move(); the folio's state is
        kept with __migrate_folio_record()), so a folio whose refcount
        check fails stays behind migration entries between passes and a
        task touching it waits in migration_entry_wait(); only
        migrate_folios_undo() restores its PTEs.  Synchronous callers get
        NR_MAX_MIGRATE_ASYNC_RETRY (3) batched passes, then
        NR_MAX_MIGRATE_SYNC_RETRY (7) one by one: two unmap/undo cycles.
        Before (``False``), unmap_and_move() -> __unmap_and_move() unmapped,
        tried and restored the PTEs in each of NR_MAX_MIGRATE_PAGES_RETRY
        (10) passes.
    mprotect_upgrade : {"none", "dirty", "exclusive"}
        Whether mprotect() adding write makes a private anon PTE writable
        without a fault (mm/mprotect.c: can_change_pte_writable()):
        ``"none"`` before v6.0; ``"dirty"``: AE and dirty (64fe24a3e05e, v6.0);
        ``"exclusive"``: any AE page (v6.2).  A PMD is upgraded only under
        ``"exclusive"`` (mm/huge_memory.c: can_change_pmd_writable(), v6.2).
    thp_cow : {"copy_huge", "split_mapcount", "split_exclusive"}
        A write fault on a read-only PMD-mapped THP (mm/huge_memory.c:
        do_huge_pmd_wp_page()).  All reuse the whole PMD when the folio is
        the faulting process's alone; they differ in the test and in what
        happens otherwise.  ``"copy_huge"`` (up to v5.7): reuse iff
        reuse_swap_page() (the highest per-page mapcount, PMD mappings
        included, is 1), else allocate a new THP and copy all 512 pages.
        ``"split_mapcount"`` (3917c80280c9 "thp: change CoW semantics for
        anon-THP", v5.8, to v5.17): reuse by reuse_swap_page(), else
        __split_huge_pmd() and VM_FAULT_FALLBACK: the fault is redone on the
        4 KiB PTE.  ``"split_exclusive"`` ("mm/huge_memory: streamline COW
        logic in do_huge_pmd_wp_page()", v5.18; PageAnonExclusive from
        v5.19): reuse if the head page is AE or the refcount is 1, else
        split and fall back.
    large_reuse : {"mapcount", "refcount", "never", "mm_id"}
        A write fault on a read-only PTE mapping a page of a large anon folio
        (mm/memory.c: do_wp_page()).  ``"mapcount"`` (up to v5.8):
        reuse_swap_page() -> page_trans_huge_map_swapcount(): reuse iff no
        page of the folio is mapped more than once.  ``"refcount"``
        (09854ba94c6a, v5.9): reuse iff the folio's refcount is 1
        (page_count() of a tail page is the folio's), i.e. only when this PTE
        is the folio's last mapping ("the last subpage will reuse the entire
        large folio").  ``"never"``: wp_can_reuse_anon_folio() returns false
        for any large folio ("let's just consistently not reuse subpages"),
        from Barry Song's "mm: prohibit the last subpage from reusing the
        entire large folio" (cd197c3a2040, v6.9; v2 posted 8 Mar 2024 and
        merged in the v6.9 merge window) until v6.15.  ``"mm_id"`` (v6.15, "mm: Copy-on-Write
        (COW) reuse support for PTE-mapped THP",
        __wp_can_reuse_large_anon_folio()): reuse iff the folio is not
        "maybe mapped shared" (MM-ID slots) and every reference is a mapping
        (large mapcount == refcount > 1).
    mthp : bool
        Anonymous multi-size THP: orders 2..8 and the per-size sysfs
        ``hugepages-<size>kB/enabled`` (19eaf44954df "mm: thp: support
        allocation of anonymous multi-size THP", v6.8).  Before, only the
        PMD size exists and follows the top-level ``enabled``.
    mm_id : bool
        CONFIG_MM_ID (v6.15, "mm: MM owner tracking for large folios
        (!hugetlb) + CONFIG_NO_PAGE_MAPCOUNT" series): the two MM slots,
        FOLIO_MM_IDS_SHARED_BIT and folio_maybe_mapped_shared(); the same
        series adds CONFIG_NO_PAGE_MAPCOUNT (``Kernel(page_mapcount=False)``).
    thp_align_anon : bool
        An anonymous mmap() whose length is a multiple of PMD_SIZE gets a
        PMD-aligned address (mm/mmap.c: __get_unmapped_area() ->
        thp_get_unmapped_area_vmflags(): efa7df3e3bb5 "mm: align larger
        anonymous mappings on THP boundaries", v6.8, limited to lengths
        that are multiples of PMD_SIZE by d4148aeab412, v6.12; the model
        applies the v6.12 rule).
    split_remaps_zero : bool
        Splitting an anon large folio maps every subpage that is still
        mapped and holds only zeros to the shared zero page instead of
        keeping it as a 4 KiB anon page (b1f202060afe "mm: remap unused
        subpages to shared zeropage when splitting isolated thp", v6.12):
        mm/huge_memory.c: __folio_split() -> remap_page(...,
        RMP_USE_SHARED_ZEROPAGE) -> mm/migrate.c: remove_migration_pte() ->
        try_to_map_unused_to_zeropage(), which skips mlocked folios and
        VM_LOCKED VMAs (the model has no mlock).  Before, the split kept
        every mapped subpage.
    huge_zero_wp : {"thp_if_enabled", "split", "thp"}
        A write (or unshare) fault on a PMD mapping the huge zero folio
        (mm/huge_memory.c: do_huge_pmd_wp_page(), is_huge_zero_pmd()).
        ``"thp_if_enabled"`` (up to v5.7): ``goto alloc``, a new THP
        cleared with clear_huge_page() and mapped writable by the PMD when
        __transparent_hugepage_enabled(vma), else split_huge_pmd() and
        VM_FAULT_FALLBACK.  ``"split"`` (3917c80280c9 "thp: change CoW
        semantics for anon-THP", v5.8, to v6.12): ``goto fallback``,
        __split_huge_pmd() maps 512 zero-page PTEs
        (__split_huge_zero_page_pmd()) and the fault is redone on the 4 KiB
        PTE, which gets one new page.  ``"thp"`` (1ced09e0331f "mm: allocate
        THP on hugezeropage wp-fault", v6.13): do_huge_zero_wp_pmd()
        allocates a THP (vma_alloc_anon_folio_pmd()) and maps it writable
        and dirty (map_anon_folio_pmd()), for an unshare fault too; the
        split is only the fallback when the allocation fails.
    madv_collapse : bool
        madvise(MADV_COLLAPSE) exists (7d8faaf15545 "mm/madvise: introduce
        MADV_COLLAPSE sync hugepage collapse", v6.1); before,
        madvise_behavior_valid() rejects advice 25 with EINVAL
        (:mod:`mmkit.khugepaged`).
    collapse_ro_refused : bool
        khugepaged and MADV_COLLAPSE refuse a PMD range none of whose PTEs
        is writable (SCAN_PAGE_RO; MADV_COLLAPSE returns EINVAL):
        hpage_collapse_scan_pmd() / __collapse_huge_page_isolate() set
        ``writable`` from pte_write().  Removed in v6.18 by Dev Jain's "mm:
        enable khugepaged anonymous collapse on non-writable regions" /
        "mm: drop all references of writable and SCAN_PAGE_RO" (Sep 2025);
        on the live 6.18 kernel a parent's MADV_COLLAPSE of its
        write-protected PTEs after fork() succeeds.
    collapse_refcount_one : bool
        v5.7 khugepaged: a page must have page_count() 1 (SCAN_PAGE_COUNT:
        no page shared across fork), a page of a compound folio is refused
        (SCAN_PAGE_COMPOUND), no max_ptes_shared; Kirill Shutemov's v5.8
        series ("khugepaged: Allow to collapse a page shared across fork",
        "... PTE-mapped compound pages", "Introduce 'max_ptes_shared'
        tunable") lifted all three.
    """

    name: str
    reuse_rule: str = "refcount"
    gup_breaks_cow: bool = False
    fork_copies_maybe_pinned: bool = True
    anon_exclusive: bool = True
    gup_unshares_anon: bool = True
    unshare_longterm_cow: bool = True
    reuse_moves_anon_rmap: bool = True
    zero_page_pinned: bool = False
    longterm_file_pin_refused: bool = True
    mprotect_upgrade: str = "exclusive"
    fork_copies_pinned_cache: bool = False
    migrate_batch: bool = True
    thp_cow: str = "split_exclusive"
    large_reuse: str = "mm_id"
    mthp: bool = True
    mm_id: bool = True
    thp_align_anon: bool = True
    split_remaps_zero: bool = True
    huge_zero_wp: str = "thp"
    madv_collapse: bool = True
    collapse_ro_refused: bool = False
    collapse_refcount_one: bool = False

    def __post_init__(self):
        if self.reuse_rule not in _REUSE_RULES:
            raise InvalidArgument(f"reuse_rule must be one of {_REUSE_RULES}, not {self.reuse_rule!r}")
        if self.mprotect_upgrade not in _MPROTECT_RULES:
            raise InvalidArgument(f"mprotect_upgrade must be one of {_MPROTECT_RULES}, not {self.mprotect_upgrade!r}")
        if self.thp_cow not in _THP_COW_RULES:
            raise InvalidArgument(f"thp_cow must be one of {_THP_COW_RULES}, not {self.thp_cow!r}")
        if self.large_reuse not in _LARGE_REUSE_RULES:
            raise InvalidArgument(f"large_reuse must be one of {_LARGE_REUSE_RULES}, not {self.large_reuse!r}")
        if self.huge_zero_wp not in _HUGE_ZERO_WP_RULES:
            raise InvalidArgument(f"huge_zero_wp must be one of {_HUGE_ZERO_WP_RULES}, not {self.huge_zero_wp!r}")
        if self.large_reuse == "mm_id" and not self.mm_id:
            raise InvalidArgument("large_reuse 'mm_id' needs mm_id: it reads the MM-ID slots")
        if self.gup_unshares_anon and not self.anon_exclusive:
            raise InvalidArgument("gup_unshares_anon needs anon_exclusive: unsharing is decided on PageAnonExclusive")
        if self.fork_copies_pinned_cache and not self.fork_copies_maybe_pinned:
            raise InvalidArgument("fork_copies_pinned_cache needs fork_copies_maybe_pinned: it widens that copy")

    @cached_property
    def kernel_names(self):
        """Today's name -> this era's name, for every function whose name
        changed (:data:`KERNEL_NAMES`); computed once per era, so a hot fault
        path reads it with one dict look-up (see :func:`kernel_name`)."""
        return {name: _kernel_name(self.name, name) for name in KERNEL_NAMES}

    @property
    def version(self):
        """The kernel version the era's name stands for, as a tuple
        (``(5, 9)``); ``None`` for a name that is not a version."""
        return _version(self.name)

    def replace(self, **rules):
        """A copy with some rules flipped; its name gets a ``*``."""
        name = rules.pop("name", self.name if self.name.endswith("*") else self.name + "*")
        try:
            return _replace(self, name=name, **rules)
        except TypeError as e:
            raise InvalidArgument(f"unknown era rule: {e}") from None

    def rules(self):
        """The rules as a dict (name excluded)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    def __str__(self):
        rows = "\n".join(f"  {k:26} {v}" for k, v in self.rules().items())
        return f"Era {self.name}\n{rows}"


_BEFORE_6_5 = dict(zero_page_pinned=True, longterm_file_pin_refused=False, migrate_batch=False,
                   mthp=False, mm_id=False, thp_align_anon=False, split_remaps_zero=False,
                   collapse_ro_refused=True)

ERAS = {
    "5.7": Era("5.7", madv_collapse=False, collapse_refcount_one=True, reuse_rule="mapcount", gup_breaks_cow=False, fork_copies_maybe_pinned=False,
               anon_exclusive=False, gup_unshares_anon=False, unshare_longterm_cow=False,
               mprotect_upgrade="none", thp_cow="copy_huge", large_reuse="mapcount", huge_zero_wp="thp_if_enabled",
               **_BEFORE_6_5),
    "5.8": Era("5.8", madv_collapse=False, reuse_rule="mapcount", gup_breaks_cow=True, fork_copies_maybe_pinned=False,
               anon_exclusive=False, gup_unshares_anon=False, unshare_longterm_cow=False,
               mprotect_upgrade="none", thp_cow="split_mapcount", large_reuse="mapcount", huge_zero_wp="split",
               **_BEFORE_6_5),
    "5.9": Era("5.9", madv_collapse=False, reuse_rule="refcount", gup_breaks_cow=False, fork_copies_maybe_pinned=True,
               anon_exclusive=False, gup_unshares_anon=False, unshare_longterm_cow=False,
               reuse_moves_anon_rmap=False, mprotect_upgrade="none", fork_copies_pinned_cache=True,
               thp_cow="split_mapcount", large_reuse="refcount", huge_zero_wp="split", **_BEFORE_6_5),
    "5.19": Era("5.19", madv_collapse=False, anon_exclusive=True, gup_unshares_anon=True, unshare_longterm_cow=False,
                mprotect_upgrade="none", large_reuse="refcount", huge_zero_wp="split", **_BEFORE_6_5),
    "6.2": Era("6.2", large_reuse="refcount", huge_zero_wp="split", **_BEFORE_6_5),
    "6.18": Era("6.18"),
}

#: Kernels that ``era()`` knows but that the era tables do not iterate over.
#: v6.0: the v5.19 rules, and mprotect() upgrades dirty exclusive anon PTEs
#: (64fe24a3e05e; clean ones only from v6.2).
EXTRA_ERAS = {
    "6.0": Era("6.0", madv_collapse=False, anon_exclusive=True, gup_unshares_anon=True, unshare_longterm_cow=False,
               mprotect_upgrade="dirty", large_reuse="refcount", huge_zero_wp="split", **_BEFORE_6_5),
}


def _version(name):
    """``"5.9"`` -> ``(5, 9)``; ``"6.18*"`` -> ``(6, 18)``; else None."""
    parts = name.rstrip("*").split(".")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


#: Functions the model's traces name whose name changed between the
#: presets' kernels: today's name -> ((first version, name), ...), newest
#: first; the last entry is the oldest name.  Sources: the v5.10 tree
#: (mm/migrate.c: unmap_and_move(), __unmap_and_move(),
#: migrate_page_move_mapping(), add_page_for_migration(); mm/compaction.c),
#: the linux-next tree [LN], Ubuntu kernel symbol lists for 5.8, 5.11,
#: 5.13, 5.15, 5.19, 6.2, 6.5, 6.8, and the commits named.
KERNEL_NAMES = {
    # a98a2f0c8ce1 "mm/rmap: split migration into its own function" (v5.14):
    # before it __unmap_and_move() called try_to_unmap(page, TTU_MIGRATION)
    "try_to_migrate_one": (((5, 14), "try_to_migrate_one"), ((0, 0), "try_to_unmap_one")),
    # v5.19 (6c287605fd56) ... v6.5: page_try_share_anon_rmap(); absent from v6.8
    "folio_try_share_anon_rmap_pte": (((6, 8), "folio_try_share_anon_rmap_pte"),
                                      ((0, 0), "page_try_share_anon_rmap")),
    # fb3d824d1a46 split page_dup_rmap() (v5.19); folio_* names with the v6.8 rmap interface overhaul
    "folio_dup_file_rmap_pte": (((6, 8), "folio_dup_file_rmap_pte"), ((5, 19), "page_dup_file_rmap"),
                                ((0, 0), "page_dup_rmap")),
    # 86ebd50224c0 (v6.16); 108ca8358139 "mm/migrate: Convert expected_page_refs()
    # to folio_expected_refs()" (v6.0)
    "folio_expected_ref_count": (((6, 16), "folio_expected_ref_count"), ((6, 0), "folio_expected_refs"),
                                 ((0, 0), "expected_page_refs")),
    # where the refcount check fails with -EAGAIN: migrate_page_move_mapping()
    # (v5.10), folio_migrate_mapping() (3417013e0d18, v5.16; called from
    # migrate_folio_extra() in v6.2), __migrate_folio() in [LN] (Kefeng Wang's
    # 2024 conversion of migrate_folio_extra(); release not checked)
    "__migrate_folio": (((6, 10), "__migrate_folio"), ((5, 16), "folio_migrate_mapping"),
                        ((0, 0), "migrate_page_move_mapping")),
    # the unmap step: migrate_folio_unmap() since the v6.3 batching series
    "migrate_folio_unmap": (((6, 3), "migrate_folio_unmap"), ((0, 0), "__unmap_and_move")),
    # move_pages()' per-page lookup: add_page_for_migration() in v5.10 and in
    # the v6.8 build, add_folio_for_migration() in [LN] (first version not checked)
    "add_folio_for_migration": (((6, 9), "add_folio_for_migration"), ((0, 0), "add_page_for_migration")),
    # isolation by move_pages(): isolate_lru_page() (v5.10; a folio-compat
    # wrapper in v5.19 and v6.2), folio_isolate_lru() (called directly in v6.5)
    "folio_isolate_lru": (((6, 5), "folio_isolate_lru"), ((0, 0), "isolate_lru_page")),
    # offlining's isolation: isolate_lru_page() (v5.10), folio_isolate_lru()
    # from do_migrate_range() in the v6.5 and v6.8 builds, isolate_folio_to_list()
    # in [LN] (first version not checked)
    "isolate_folio_to_list": (((6, 9), "isolate_folio_to_list"), ((6, 5), "folio_isolate_lru"),
                              ((0, 0), "isolate_lru_page")),
    # fork's per-PTE copy: copy_one_pte() until 79a1971c5f14 "mm: move the
    # copy_one_pte() pte_present check into the caller" and df3a57d1f607 "mm:
    # split out the non-present case from copy_one_pte()" (v5.9),
    # copy_present_pte() (v5.9-v6.8), copy_present_ptes() after v6.8
    "copy_present_ptes": (((6, 9), "copy_present_ptes"), ((5, 9), "copy_present_pte"),
                          ((0, 0), "copy_one_pte")),
    # the refcount reuse test sat inline in do_wp_page() from 09854ba94c6a
    # (v5.9) until "memory: move exclusivity detection in do_wp_page() into
    # wp_can_reuse_anon_folio()" and "mm/rmap: convert page_move_anon_rmap()
    # to folio_move_anon_rmap()" (Hildenbrand, Oct 2023, in the v6.7 mm pull)
    "wp_can_reuse_anon_folio": (((6, 7), "wp_can_reuse_anon_folio"), ((0, 0), "do_wp_page")),
    "folio_move_anon_rmap": (((6, 7), "folio_move_anon_rmap"), ((0, 0), "page_move_anon_rmap")),
    # the page cache insertion: filemap_add_folio() since v5.16
    "filemap_add_folio": (((5, 16), "filemap_add_folio"), ((0, 0), "add_to_page_cache_lru")),
    # shmem's lookup: shmem_getpage_gfp() up to v5.19, shmem_get_folio_gfp() in v6.2
    "shmem_get_folio_gfp": (((6, 0), "shmem_get_folio_gfp"), ((0, 0), "shmem_getpage_gfp")),
    # GUP's grab: slow path try_grab_page() (v5.8-v6.8 builds), fast path
    # try_grab_compound_head() (up to v5.15), try_grab_folio() (v5.19-v6.8)
    "try_grab_folio": (((6, 9), "try_grab_folio"), ((0, 0), "try_grab_page")),
    "try_grab_folio_fast": (((6, 9), "try_grab_folio_fast"), ((5, 16), "try_grab_folio"),
                            ((0, 0), "try_grab_compound_head")),
    # the PMD fault's allocation: alloc_anon_folio() (mTHP, v6.8) picks the
    # order below PMD size; the PMD level keeps do_huge_pmd_anonymous_page()
    # the fork-time PMD dup: folio_try_dup_anon_rmap_pmd() (v6.8 rmap overhaul),
    # page_try_dup_anon_rmap(page, true, ...) (v5.19), page_dup_rmap(page, true) before
    "folio_try_dup_anon_rmap_pmd": (((6, 8), "folio_try_dup_anon_rmap_pmd"), ((5, 19), "page_try_dup_anon_rmap"),
                                    ((0, 0), "page_dup_rmap")),
    # the large-folio reuse test: __wp_can_reuse_large_anon_folio() (v6.15);
    # wp_can_reuse_anon_folio() v6.7-v6.14; inline in do_wp_page() (v5.9-v6.6);
    # (the large-folio rule inside them changed in 2024: Era.large_reuse)
    # reuse_swap_page() up to v5.8
    # the deferred split queue: deferred_split_huge_page(page) until Wilcox's
    # folio conversion (Jan 2023, after v6.2; first version not checked: v6.3
    # assumed); deferred_split_scan() calls split_huge_page() there and
    # split_folio() in [LN]
    "deferred_split_folio": (((6, 3), "deferred_split_folio"), ((0, 0), "deferred_split_huge_page")),
    "split_folio": (((6, 3), "split_folio"), ((0, 0), "split_huge_page")),
    # mm/khugepaged.c: 7d2c4385c341 "mm/khugepaged: rename prefix of shared collapse functions" (v6.1)
    "hpage_collapse_scan_pmd": (((6, 1), "hpage_collapse_scan_pmd"), ((0, 0), "khugepaged_scan_pmd")),
    # mm/mremap.c's vma_remap_struct helpers (Lorenzo Stoakes' 2025 refactor; first version not checked, after
    # v6.2, so every preset up to 6.2 gets the old place): before, the shrink and the in-place growth ran inline
    # in SYSCALL_DEFINE5(mremap), the MREMAP_DONTUNMAP clean-up in move_vma()
    "shrink_vma": (((6, 15), "shrink_vma"), ((0, 0), "mremap")),
    "expand_vma_in_place": (((6, 15), "expand_vma_in_place"), ((0, 0), "mremap")),
    "dontunmap_complete": (((6, 15), "dontunmap_complete"), ((0, 0), "move_vma")),
    "__wp_can_reuse_large_anon_folio": (((6, 15), "__wp_can_reuse_large_anon_folio"),
                                        ((6, 7), "wp_can_reuse_anon_folio"), ((5, 9), "do_wp_page"),
                                        ((0, 0), "reuse_swap_page")),
}


def kernel_name(e, name):
    """The name function ``name`` (today's name) had in the kernel of era
    ``e``.  Eras whose name is not a version (custom ones) get today's.

    >>> kernel_name(era("5.9"), "try_to_migrate_one")
    'try_to_unmap_one'
    >>> kernel_name(era("6.18"), "try_to_migrate_one")
    'try_to_migrate_one'
    """
    # keyed on the era's name (the version comes from it alone): hashing two
    # strings is cheap, hashing the frozen Era is a Python-level call on the
    # hot fault paths
    return _kernel_name(e.name, name)


@lru_cache(maxsize=None)
def _kernel_name(era_name, name):
    v = _version(era_name)
    table = KERNEL_NAMES.get(name)
    if v is None or table is None:
        return name
    for since, old in table:
        if v >= since:
            return old
    return name


def era(spec=None):
    """Return the Era for ``spec``: a preset name, an Era, or None (the default).

    Raises
    ------
    InvalidArgument
        For an unknown preset name.
    """
    if spec is None:
        return ERAS[DEFAULT_ERA]
    if isinstance(spec, Era):
        return spec
    if isinstance(spec, (int, float)):
        spec = str(spec)
    try:
        return ERAS[spec] if spec in ERAS else EXTRA_ERAS[spec]
    except (KeyError, TypeError):
        raise InvalidArgument(f"unknown era {spec!r}; presets are {', '.join(ERAS)} "
                              f"(and {', '.join(EXTRA_ERAS)})") from None
