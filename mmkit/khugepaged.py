"""Collapse: MADV_COLLAPSE and khugepaged turn a PTE-mapped anonymous range
into a new PMD-mapped THP (mm/khugepaged.c).

Both callers run the same three steps on one PMD-aligned 2 MiB range, told
apart by ``struct collapse_control``'s ``is_khugepaged``:

1. **hpage_collapse_scan_pmd()** reads the page table.  No page table at
   all is ``SCAN_PMD_NULL`` / ``SCAN_PMD_NONE``; a PMD already mapping a THP
   is ``SCAN_PMD_MAPPED`` (counted as a success by MADV_COLLAPSE).  Then,
   per PTE: an empty PTE or the zero page counts against ``max_ptes_none``;
   a page that is not anon refuses (``SCAN_PAGE_ANON``); a page whose folio
   may be mapped by another process (folio_maybe_mapped_shared()) counts
   against ``max_ptes_shared``; a folio with more references than mappings
   -- a pin, a GUP reference, a pipe buffer -- refuses
   (folio_expected_ref_count() != folio_ref_count(): ``SCAN_PAGE_COUNT``).
   A page of a PTE-mapped large folio (a split THP, an mTHP) is no
   obstacle: it is checked like any other.
2. **collapse_huge_page()** allocates a new order-9 folio,
   __collapse_huge_page_isolate() repeats the per-PTE checks (the model is
   single-threaded: they give the same answer) and
   __collapse_huge_page_copy() copies every page into the new folio (a
   hole or the zero page gives a zeroed page), then clears each old PTE,
   removes its rmap and drops its reference: an old page nobody else holds
   is freed.  **A PTE-mapped THP is copied too**, into a new folio with new
   PFNs -- its own folio is not re-mapped by a PMD: that is
   collapse_pte_mapped_thp(), which only file and shmem folios reach (it
   returns SCAN_VMA_CHECK for a VMA without ``vm_file``).
3. **map_anon_folio_pmd_nopf()** maps the new folio with one PMD, dirty and
   writable if the VMA is (maybe_pmd_mkwrite(pmd_mkdirty())), with
   folio_add_new_anon_rmap(RMAP_EXCLUSIVE): PageAnonExclusive on the head
   page, whatever the old PTEs were (read-only after a fork, say).  A page
   the range shared with another process stays that process's alone.

MADV_COLLAPSE (:func:`madvise_collapse`, v6.1: 7d8faaf15545 "mm/madvise:
introduce MADV_COLLAPSE sync hugepage collapse", Zach O'Keefe) ignores the
sysfs policy (TVA_FORCED_COLLAPSE) and khugepaged's limits
(``max_ptes_none``, ``max_ptes_shared``, ``max_ptes_swap``, the "young"
test), but refuses a VM_NOHUGEPAGE VMA, a VMA with no anon_vma yet (never
written: a read fault maps the zero page without one) and a VMA that holds
no PMD-aligned 2 MiB.  It collapses every PMD-aligned 2 MiB range inside
the advised range and returns 0 only if every one is (or already was)
PMD-mapped; else the errno of the last failure (madvise_collapse_errno()):
``EAGAIN`` for a pinned or referenced page (SCAN_PAGE_COUNT, LRU, lock),
``ENOMEM`` when no THP can be allocated, ``EBUSY`` for a cgroup charge
failure, ``EINVAL`` for everything else.  A range covering no PMD-aligned
2 MiB returns 0 when it ends where it starts after rounding, else EINVAL.

khugepaged (:func:`scan`) obeys the sysfs policy (TVA_KHUGEPAGED: in
``madvise`` mode only VM_HUGEPAGE VMAs) and the limits of
``/sys/kernel/mm/transparent_hugepage/khugepaged/`` (defaults from
khugepaged_init(): ``max_ptes_none`` 511, ``max_ptes_swap`` 64,
``max_ptes_shared`` 256), passed to :func:`scan` as arguments.

Era rules (read from the kernel source; the preset's version decides until
the era table carries them, see :func:`era_rule`):

* ``madv_collapse`` -- MADV_COLLAPSE exists from v6.1; before, madvise()
  rejects advice 25 with EINVAL (madvise_behavior_valid()).
* ``collapse_ro_refused`` -- up to v6.17 a range with no writable PTE is
  refused with ``SCAN_PAGE_RO`` (MADV_COLLAPSE: EINVAL): both scans set
  ``writable`` from pte_write().  Dev Jain's "mm: enable khugepaged
  anonymous collapse on non-writable regions" and "mm: drop all references
  of writable and SCAN_PAGE_RO" (posted Sep 2025) removed it; on the live
  6.18 kernel a parent's MADV_COLLAPSE of its read-only PTEs after fork()
  succeeds.
* Function names: hpage_collapse_scan_pmd() was khugepaged_scan_pmd()
  before 7d2c4385c341 "mm/khugepaged: rename prefix of shared collapse
  functions" (v6.1, with MADV_COLLAPSE).
* The shared test counts folio_maybe_mapped_shared() (v6.15, CONFIG_MM_ID)
  in eras with MM IDs, ``page_mapcount(page) > 1`` before (v5.8-v6.2).
* v5.7 (before Kirill Shutemov's v5.8 series "khugepaged: Allow to collapse
  a page shared across fork" / "... PTE-mapped compound pages" /
  "Introduce 'max_ptes_shared' tunable"): a page must have refcount 1
  (``page_count(page) != 1 + PageSwapCache(page)``: SCAN_PAGE_COUNT), a
  page of a compound folio is refused (SCAN_PAGE_COMPOUND), and there is no
  ``max_ptes_shared``.

Checked on the live 6.18 kernel (mmkit.scenarios.collapse, all agree
with the model; and ad-hoc runs): 512 written 4 KiB pages collapse into a
PMD-mapped THP with new PFNs and AE on the head; a range already
PMD-mapped (the huge zero page too) returns 0 unchanged; VM_NOHUGEPAGE,
a never-written VMA and a VMA with no aligned 2 MiB give EINVAL; a pinned
page gives EAGAIN and nothing changes; after fork() the parent's range is
collapsed and the child keeps the old pages; a PTE-mapped THP gets new
PFNs; written / untouched / written collapses the first range only and
returns EINVAL; ``[a + 4 KiB, a + 8 KiB)`` is EINVAL, ``[a, a + 4 KiB)``
is 0.  khugepaged (no sysfs change, its own 10 s period) collapsed a
VM_HUGEPAGE range of 512 pages and one of 3 pages, and left a pinned
range, a non-VM_HUGEPAGE range and a range with 300 pages shared with a
child (> max_ptes_shared 256) alone, while one with 200 shared pages was
collapsed -- as :func:`scan` does.

Not modelled: file and shmem collapse (collapse_file(),
collapse_pte_mapped_thp(); asking for it raises InvalidArgument), swap
entries (no swap: ``max_ptes_swap`` is never reached), userfaultfd, the
accessed bits (every present PTE counts as young, so khugepaged's
``SCAN_LACK_REFERENCED_PAGE`` needs an all-empty range, which
``max_ptes_none`` refuses first), NUMA node choice, allocation and memcg
failures (``ENOMEM`` / ``EBUSY`` never happen), mTHP-order collapse (only
PMD collapse: 6.18's collapse_huge_page() allocates HPAGE_PMD_ORDER
only), khugepaged's pages_to_scan budget and sleeps (one :func:`scan` is one
full pass), MMF_DISABLE_THP (prctl), and 5.7's old "referenced" rule.
"""

from .era import kernel_name
from .errors import InvalidArgument, KernelError
from .folio import folio_expected_ref_count
from .memory import folio_put
from .mm import PMD_SIZE, Pmd
from .mmap import vmas_covering
from .rmap import folio_add_new_large_anon_rmap, folio_maybe_mapped_shared, folio_remove_rmap_pte, \
    folio_remove_rmap_ptes
from .thp import PMD_ORDER

__all__ = ["CollapseControl", "KHUGEPAGED_DEFAULTS", "MadvCollapseError", "era_rule", "do_madvise_collapse",
           "madvise_collapse", "madvise_collapse_errno", "hpage_collapse_scan_pmd", "collapse_huge_page", "scan",
           "ScanResult"]

_PMD_MASK = ~(PMD_SIZE - 1)
HPAGE_PMD_NR = 1 << PMD_ORDER

#: /sys/kernel/mm/transparent_hugepage/khugepaged/ defaults (mm/khugepaged.c: khugepaged_init())
KHUGEPAGED_DEFAULTS = dict(max_ptes_none=HPAGE_PMD_NR - 1, max_ptes_swap=HPAGE_PMD_NR // 8,
                           max_ptes_shared=HPAGE_PMD_NR // 2)

#: madvise_collapse(): results after which the loop goes on to the next PMD range
_CONTINUE = frozenset(("SCAN_PMD_NULL", "SCAN_PTE_NON_PRESENT", "SCAN_PTE_UFFD_WP", "SCAN_LACK_REFERENCED_PAGE",
                       "SCAN_PAGE_NULL", "SCAN_PAGE_COUNT", "SCAN_PAGE_LOCK", "SCAN_PAGE_COMPOUND", "SCAN_PAGE_LRU",
                       "SCAN_DEL_PAGE_LRU"))

#: what each result means, for traces and messages
WHY = {
    "SCAN_SUCCEED": "collapsed into a new PMD-mapped THP",
    "SCAN_PMD_MAPPED": "already mapped by a PMD",
    "SCAN_PMD_NULL": "no page table here (no PMD table above it either)",
    "SCAN_PMD_NONE": "no page table here (pmd_none)",
    "SCAN_EXCEED_NONE_PTE": "more empty or zero-page PTEs than max_ptes_none",
    "SCAN_EXCEED_SHARED_PTE": "more pages maybe mapped shared than max_ptes_shared",
    "SCAN_PTE_NON_PRESENT": "a non-present PTE (migration entry)",
    "SCAN_PAGE_RO": "no writable PTE in the range (before v6.18)",
    "SCAN_LACK_REFERENCED_PAGE": "no young PTE",
    "SCAN_PAGE_ANON": "a page that is not anonymous",
    "SCAN_PAGE_COUNT": "a page with references that are not mappings (pin, GUP, pipe)",
    "SCAN_PAGE_COMPOUND": "a page of a large folio (before v5.8)",
    "SCAN_FAIL": "no PMD-aligned 2 MiB in the range",
    "SCAN_VMA_CHECK": "the VMA may not have a THP",
}


def era_rule(era, rule):
    """The era's value of a collapse rule: the Era's own field once the era
    table has it, else derived from the preset's version (a custom era with
    no version gets today's rule).

    ``"madv_collapse"``: MADV_COLLAPSE exists (v6.1+).
    ``"collapse_ro_refused"``: a range with no writable PTE is refused,
    SCAN_PAGE_RO (up to v6.17).
    ``"collapse_refcount_one"``: v5.7's khugepaged: refcount must be 1, no
    compound pages, no max_ptes_shared (before v5.8).
    """
    v = getattr(era, rule, None)
    if v is not None:
        return v
    ver = era.version
    if rule == "madv_collapse":
        return ver is None or ver >= (6, 1)
    if rule == "collapse_ro_refused":
        return ver is not None and ver < (6, 18)
    if rule == "collapse_refcount_one":
        return ver is not None and ver < (5, 8)
    raise KeyError(rule)


class CollapseControl:
    """mm/khugepaged.c: struct collapse_control, plus the sysfs limits it
    reads when ``is_khugepaged`` (ignored by MADV_COLLAPSE)."""

    __slots__ = ("is_khugepaged", "max_ptes_none", "max_ptes_shared", "max_ptes_swap")

    def __init__(self, is_khugepaged, max_ptes_none=511, max_ptes_shared=256, max_ptes_swap=64):
        self.is_khugepaged = is_khugepaged
        self.max_ptes_none = max_ptes_none
        self.max_ptes_shared = max_ptes_shared
        self.max_ptes_swap = max_ptes_swap


class MadvCollapseError(KernelError):
    """MADV_COLLAPSE failed for at least one PMD range.

    Unlike other KernelErrors the state may have changed: "MADV_COLLAPSE
    breaks from existing madvise(2) conventions to provide actionable
    feedback" (mm/khugepaged.c: madvise_collapse_errno()) -- the ranges
    before the one that failed stay collapsed, as on the real kernel.

    Attributes
    ----------
    results : list of (int, str)
        (address, scan result) of every PMD range tried, in order.
    """

    def __init__(self, errno, message, results):
        super().__init__(errno, message)
        self.results = results


class ScanResult(list):
    """What :func:`scan` did: a list of (process name, address, scan result)
    per PMD range it scanned, with ``pages_collapsed`` (khugepaged's sysfs
    counter for this pass) and ``full_scans``."""

    pages_collapsed = 0
    full_scans = 1


# -- MADV_COLLAPSE -------------------------------------------------------------------

def madvise_collapse_errno(result):
    """mm/khugepaged.c: madvise_collapse_errno(): the errno of a failed scan result."""
    if result == "SCAN_ALLOC_HUGE_PAGE_FAIL":
        return "ENOMEM"
    if result in ("SCAN_CGROUP_CHARGE_FAIL", "SCAN_EXCEED_NONE_PTE"):
        return "EBUSY"
    if result in ("SCAN_PAGE_COUNT", "SCAN_PAGE_LOCK", "SCAN_PAGE_LRU", "SCAN_DEL_PAGE_LRU", "SCAN_PAGE_FILLED"):
        return "EAGAIN"
    return "EINVAL"


def do_madvise_collapse(k, mm, start, end):
    """madvise(start, end - start, MADV_COLLAPSE) on ``mm``
    (mm/madvise.c: madvise_walk_vmas() -> madvise_vma_behavior() ->
    madvise_collapse() once per VMA, on the part of the range inside it).

    Raises
    ------
    KernelError
        EINVAL before v6.1 (no such advice); ENOMEM for a range with a hole
        (checked before anything changes; the kernel collapses the mapped
        parts first and then returns -ENOMEM).
    InvalidArgument
        A file or shared (shmem) mapping in the range: collapse_file() is
        not modelled.  Nothing changes.
    MadvCollapseError
        A VMA refused or a range failed; ranges collapsed before stay so.
    """
    era = k.era
    if not era_rule(era, "madv_collapse"):
        raise KernelError("EINVAL", f"MADV_COLLAPSE (25) does not exist in {era.name}: madvise_behavior_valid() "
                          "rejects it (7d8faaf15545, v6.1)")
    vmas = vmas_covering(mm, start, end)
    for vma in vmas:
        if vma.file is not None or vma.shared:
            raise InvalidArgument(f"MADV_COLLAPSE of a {'file' if vma.file is not None else 'shared'} mapping "
                                  f"at {vma.start:#x} is not modelled (mm/khugepaged.c: collapse_file())")
    results = []
    for vma in vmas:
        err = madvise_collapse(k, vma, max(start, vma.start), min(end, vma.end), results)
        if k.check:
            k.after_range(mm, max(start, vma.start), min(end, vma.end))
        if err is not None:
            done = sum(1 for _, r in results if r in ("SCAN_SUCCEED", "SCAN_PMD_MAPPED"))
            last = results[-1][1] if results else "SCAN_VMA_CHECK"
            raise MadvCollapseError(err, f"MADV_COLLAPSE: {WHY.get(last, last)} ({last}); "
                                    f"{done} of {len(results)} PMD range(s) collapsed or already PMD-mapped",
                                    results)
    return results


def _pmd_allowed(k, vma, forced):
    """include/linux/huge_mm.h: thp_vma_allowable_order(vma, vm_flags,
    TVA_FORCED_COLLAPSE or TVA_KHUGEPAGED, PMD_ORDER) for a private anon
    VMA: None if allowed, else why not."""
    if vma.nohugepage:
        return "VM_NOHUGEPAGE (vma_thp_disabled())"
    if not forced and not k.thp.orders(vma) >> PMD_ORDER & 1:
        return "the sysfs THP policy does not allow a 2 MiB THP here"
    last = (vma.end - PMD_SIZE) & _PMD_MASK
    if vma.end - vma.start < PMD_SIZE or last < vma.start:
        return "no PMD-aligned 2 MiB inside the VMA (thp_vma_suitable_order())"
    if vma.anon_vma is None:
        return "no anon_vma yet (never written): __thp_vma_allowable_orders() allows that only at a fault"
    return None


def madvise_collapse(k, vma, start, end, results=None):
    """mm/khugepaged.c: madvise_collapse() on ``[start, end)`` inside ``vma``.

    Returns None (0) when every PMD-aligned 2 MiB range in it is now
    PMD-mapped, else the errno name of the last failure.  ``results`` (a
    list) collects (address, scan result) per range tried.
    """
    results = [] if results is None else results
    emit = k.trace.emit
    why = _pmd_allowed(k, vma, forced=True)
    if why is not None:
        emit("madvise_collapse", "-EINVAL", "thp_vma_allowable_order(TVA_FORCED_COLLAPSE): " + why)
        return "EINVAL"
    cc = CollapseControl(False)
    hstart = (start + PMD_SIZE - 1) & _PMD_MASK
    hend = end & _PMD_MASK
    thps, last_fail = 0, "SCAN_FAIL"
    addr = hstart
    while addr < hend:
        r = hpage_collapse_scan_pmd(k, vma, addr, cc)
        results.append((addr, r))
        if r in ("SCAN_SUCCEED", "SCAN_PMD_MAPPED"):
            thps += 1
        elif r in _CONTINUE:
            last_fail = r
        else:
            last_fail = r
            break
        addr += PMD_SIZE
    # (hend - hstart) >> HPAGE_PMD_SHIFT in unsigned long: never equal to
    # thps when hend < hstart (a range inside one 2 MiB that starts past its
    # beginning), so such a call fails with madvise_collapse_errno(SCAN_FAIL)
    want = (hend - hstart) >> 21 if hend >= hstart else None
    if thps == want:
        emit("madvise_collapse", "0", f"{thps} PMD range(s) PMD-mapped")
        return None
    err = madvise_collapse_errno(last_fail)
    emit("madvise_collapse", f"-{err}", f"last failure {last_fail}: {WHY.get(last_fail, '')}")
    return err


# -- the scan and the collapse ------------------------------------------------------

def _pud_present(mm, key):
    """mm_find_pmd() finds a PMD table when the PUD above it is present.
    The model has no upper levels: a PMD table exists when any PMD slot of
    the same 1 GiB holds a page table or a PMD."""
    g = key >> 9
    return any(kk >> 9 == g for kk in mm.pgd)


def _maybe_shared(k, page, folio):
    """The shared test: folio_maybe_mapped_shared() (v6.15, MM IDs);
    page_mapcount(page) > 1 before."""
    if k.era.mm_id:
        return folio_maybe_mapped_shared(folio)
    return page.mapcount > 1


def hpage_collapse_scan_pmd(k, vma, addr, cc):
    """mm/khugepaged.c: hpage_collapse_scan_pmd(): may the PMD range at
    ``addr`` be collapsed?  On SCAN_SUCCEED it calls
    :func:`collapse_huge_page`.  Returns the scan result's name."""
    mm = vma.mm
    key = addr >> 21
    emit = k.trace.emit
    table = mm.pgd.get(key)
    fn = kernel_name(k.era, "hpage_collapse_scan_pmd")
    if table is None:
        r = "SCAN_PMD_NONE" if _pud_present(mm, key) else "SCAN_PMD_NULL"
        emit(fn, r, f"{addr:#x}: find_pmd_or_thp_or_none(): {WHY[r]}")
        return r
    if type(table) is Pmd:
        emit(fn, "SCAN_PMD_MAPPED", f"{addr:#x}: {WHY['SCAN_PMD_MAPPED']}", table.folio.pfn)
        return "SCAN_PMD_MAPPED"
    era = k.era
    old = era_rule(era, "collapse_refcount_one")
    ro_refused = era_rule(era, "collapse_ro_refused")
    khd = cc.is_khugepaged
    none_or_zero = shared = referenced = 0
    writable = False
    checked = set()
    for i, e in enumerate(table):
        if e is None or (e.present and e.folio.zero):
            none_or_zero += 1
            if khd and none_or_zero > cc.max_ptes_none:
                return _fail(k, fn, "SCAN_EXCEED_NONE_PTE", addr, f"{none_or_zero} > max_ptes_none "
                             f"{cc.max_ptes_none}")
            continue
        if not e.present:
            return _fail(k, fn, "SCAN_PTE_NON_PRESENT", addr, f"page {i}")
        page = e.folio
        folio = page.folio if page.large else page
        if not folio.anon:
            return _fail(k, fn, "SCAN_PAGE_ANON", addr, f"page {i}", folio.pfn)
        if not old and _maybe_shared(k, page, folio):
            shared += 1
            if khd and shared > cc.max_ptes_shared:
                return _fail(k, fn, "SCAN_EXCEED_SHARED_PTE", addr, f"{shared} > max_ptes_shared "
                             f"{cc.max_ptes_shared}", page.pfn)
        if old and folio.large:
            return _fail(k, fn, "SCAN_PAGE_COMPOUND", addr, f"page {i} is part of an order-{folio.order} folio",
                         page.pfn)
        if id(folio) not in checked:
            checked.add(id(folio))
            expected = 1 if old else folio_expected_ref_count(folio)
            if folio.refcount != expected:
                return _fail(k, fn, "SCAN_PAGE_COUNT", addr, f"page {i}: refcount {folio.refcount}, expected "
                             f"{expected} ({'page_count() != 1' if old else 'folio_expected_ref_count()'})",
                             page.pfn)
        referenced += 1             # no accessed bits in the model: every present PTE is young
        if e.write:
            writable = True
    if ro_refused and not writable:
        return _fail(k, fn, "SCAN_PAGE_RO", addr, "no PTE of the range is writable")
    if khd and not referenced:
        return _fail(k, fn, "SCAN_LACK_REFERENCED_PAGE", addr, "no young PTE")
    emit(fn, "SCAN_SUCCEED", f"{addr:#x}: {512 - none_or_zero} page(s) present, {none_or_zero} empty or zero "
         f"page, {shared} maybe shared; no extra reference")
    return collapse_huge_page(k, vma, addr, cc)


def _fail(k, fn, result, addr, detail, pfn=None):
    k.trace.emit(fn, result, f"{addr:#x}: {WHY.get(result, '')}: {detail}", pfn)
    return result


def collapse_huge_page(k, vma, haddr, cc):
    """mm/khugepaged.c: collapse_huge_page() after a successful scan:
    alloc_charge_folio() (an order-9 folio), __collapse_huge_page_isolate()
    (same checks, same answer here), __collapse_huge_page_copy() and
    __collapse_huge_page_copy_succeeded() (copy every page, zero the holes,
    clear the PTEs, folio_remove_rmap_ptes(), folio_put_refs(): old pages
    nobody else holds are freed), then map_anon_folio_pmd_nopf(): one PMD,
    dirty, writable if the VMA is, folio_add_new_anon_rmap(RMAP_EXCLUSIVE)
    (AE on the head page).  The PTE table is deposited for a later split
    (pgtable_trans_huge_deposit()).  Returns "SCAN_SUCCEED"."""
    mm = vma.mm
    key = haddr >> 21
    table = mm.pgd[key]
    data = [b"" if e is None or e.folio.zero else e.folio.data for e in table]
    new = k.alloc_large_folio(PMD_ORDER, data)
    i = 0
    nr_folios = k.nr_folios
    while i < HPAGE_PMD_NR:
        e = table[i]
        if e is None:
            i += 1
            continue
        page = e.folio
        if page.zero:
            table[i] = None             # ptep_clear(); the zero page is not counted
            i += 1
            continue
        if page.large:
            # folio_pte_batch(): consecutive pages of one folio go together
            f, j, nxt = page.folio, i + 1, page.i + 1
            while j < HPAGE_PMD_NR and table[j] is not None and table[j].folio.large \
                    and table[j].folio.folio is f and table[j].folio.i == nxt:
                j += 1
                nxt += 1
            for x in range(i, j):
                table[x] = None
            folio_remove_rmap_ptes(k, f, page.i, j - i, vma)
            f.refcount -= j - i
            if f.refcount == 0:
                k.free_folio(f)
            i = j
            continue
        table[i] = None
        folio_remove_rmap_pte(k, page, vma)
        folio_put(k, page)
        i += 1
    freed0 = nr_folios - k.nr_folios
    folio_add_new_large_anon_rmap(k, new, vma, haddr, pmd=True)
    mm.pgd[key] = Pmd(new, vma.write, True)
    k.trace.emit("collapse_huge_page", "new PMD-mapped THP (order 9)",
                 "copied the range's pages into it, {0} old folio(s) freed; AE on the head "
                 "(folio_add_new_anon_rmap(RMAP_EXCLUSIVE)), PMD {1}", new.pfn, freed0,
                 "writable" if vma.write else "read-only")
    return "SCAN_SUCCEED"


# -- khugepaged ------------------------------------------------------------------------

def scan(k, max_ptes_none=511, max_ptes_shared=256, max_ptes_swap=64):
    """One full pass of khugepaged (mm/khugepaged.c: khugepaged_do_scan() ->
    khugepaged_scan_mm_slot() -> hpage_collapse_scan_pmd() with
    ``is_khugepaged``): every live process, every private anon VMA that
    thp_vma_allowable_order(TVA_KHUGEPAGED) allows (the sysfs policy:
    ``madvise`` mode needs MADV_HUGEPAGE; no VM_NOHUGEPAGE; an anon_vma;
    room for a PMD), every PMD-aligned 2 MiB inside it.

    Parameters
    ----------
    max_ptes_none, max_ptes_shared, max_ptes_swap : int
        The sysfs limits (0..511; defaults as khugepaged_init() sets them).

    Returns
    -------
    ScanResult
        (process name, address, result) per range scanned;
        ``pages_collapsed`` counts the SCAN_SUCCEED ones.

    Raises
    ------
    InvalidArgument
        A limit that is not an int in 0..511 (max_ptes_none_store()
        returns -EINVAL); nothing changes.

    Notes
    -----
    The real khugepaged scans ``pages_to_scan`` (4096) PTEs every
    ``scan_sleep_millisecs`` (10000) and only mms registered by
    khugepaged_enter_vma() (at MADV_HUGEPAGE or when an eligible VMA is
    mapped or faulted); one call here is one whole pass over every mm.
    v5.7's old rules: see the module docstring.

    Examples
    --------
    >>> from mmkit import Kernel
    >>> from mmkit import khugepaged
    >>> k = Kernel(); p = k.spawn("P")
    >>> a = p.mmap(1024); a = (a + (1 << 21) - 1) & ~((1 << 21) - 1)
    >>> p.madvise(a, 512, "nohugepage")
    >>> p.write(a, b"x" * (512 * 4096))
    >>> p.madvise(a, 512, "hugepage")
    >>> khugepaged.scan(k).pages_collapsed, k.page(p, a).pmd_mapped
    (1, True)
    """
    for name, v in (("max_ptes_none", max_ptes_none), ("max_ptes_shared", max_ptes_shared),
                    ("max_ptes_swap", max_ptes_swap)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= HPAGE_PMD_NR - 1:
            raise InvalidArgument(f"khugepaged/{name} takes an int in 0..{HPAGE_PMD_NR - 1}, not {v!r}")
    k.trace.begin("khugepaged scan")
    cc = CollapseControl(True, max_ptes_none, max_ptes_shared, max_ptes_swap)
    out = ScanResult()
    for t in list(k.tasks.values()):
        if not t.alive:
            continue
        mm = t.mm
        for vma in list(mm.vmas):
            if vma.file is not None or vma.shared or _pmd_allowed(k, vma, forced=False) is not None:
                continue
            addr = (vma.start + PMD_SIZE - 1) & _PMD_MASK
            hend = vma.end & _PMD_MASK
            while addr < hend:
                r = hpage_collapse_scan_pmd(k, vma, addr, cc)
                out.append((t.name, addr, r))
                if r == "SCAN_SUCCEED":
                    out.pages_collapsed += 1
                    if k.check:
                        k.after_range(mm, addr, addr + PMD_SIZE)
                addr += PMD_SIZE
    k.trace.emit("khugepaged_do_scan", f"{out.pages_collapsed} range(s) collapsed",
                 f"{len(out)} PMD range(s) scanned in one full pass")
    return out
