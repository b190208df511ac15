"""get_user_pages: references (FOLL_GET) and pins (FOLL_PIN) (mm/gup.c).

A FOLL_GET reference adds 1 to the refcount; a FOLL_PIN on a small folio
adds GUP_PIN_COUNTING_BIAS (1024), which is how folio_maybe_dma_pinned()
can tell.  Before taking a read-only pin on an anon page that is not
PageAnonExclusive, GUP first triggers FAULT_FLAG_UNSHARE so that the pin
lands on a page this process alone owns (gup_must_unshare(), v5.19+).
"""

from .era import kernel_name
from .errors import KernelError, InvariantViolation
from .folio import GUP_PIN_COUNTING_BIAS
from .memory import FAULT_FLAG_UNSHARE, FAULT_FLAG_WRITE, handle_mm_fault, folio_put
from .mm import is_cow_mapping
from .pageinfo import PAGE_SIZE

__all__ = ["FOLL_WRITE", "FOLL_GET", "FOLL_PIN", "FOLL_LONGTERM", "gup_must_unshare",
           "check_vma_flags", "get_user_pages", "try_grab_folio", "gup_put_folio"]

FOLL_WRITE = 0x01
FOLL_GET = 0x04
FOLL_LONGTERM = 0x100
FOLL_PIN = 1 << 19


def flags_str(flags):
    """``FOLL_PIN|FOLL_LONGTERM`` style name of ``flags``."""
    names = [n for n, v in (("FOLL_PIN", FOLL_PIN), ("FOLL_GET", FOLL_GET), ("FOLL_WRITE", FOLL_WRITE),
                            ("FOLL_LONGTERM", FOLL_LONGTERM)) if flags & v]
    return "|".join(names)


def gup_must_unshare(k, vma, flags, folio):
    """mm/internal.h: gup_must_unshare() -- must this R/O pin unshare first?

    Only a FOLL_PIN without FOLL_WRITE ever unshares (FOLL_GET never does).
    Anon page: unshare iff not PageAnonExclusive (v5.19+).  Non-anon page
    (page cache, zero page): only FOLL_LONGTERM pins in a COW mapping
    (v6.2+); GUP-fast (``vma`` None) cannot tell and falls back.
    """
    era = k.era
    if (flags & (FOLL_PIN | FOLL_WRITE)) != FOLL_PIN or not era.gup_unshares_anon:
        return False
    if not folio.anon:
        if not flags & FOLL_LONGTERM or not era.unshare_longterm_cow:
            return False
        return True if vma is None else is_cow_mapping(vma)
    return not folio.anon_exclusive


def check_vma_flags(k, vma, flags, addr):
    """mm/gup.c: check_vma_flags() and writable_file_mapping_allowed().

    Raises KernelError("EFAULT") for a write without VM_WRITE, a read
    without VM_READ, and (v6.5+, ``era.longterm_file_pin_refused``) a
    long-term writable pin of a shared file mapping that needs dirty
    tracking (not shmem).
    """
    if vma is None:
        raise KernelError("EFAULT", f"no VMA at {addr:#x}")
    if flags & FOLL_WRITE and not vma.write:
        raise KernelError("EFAULT", f"write access to {addr:#x} but the VMA is not writable")
    if not flags & FOLL_WRITE and not vma.read:
        raise KernelError("EFAULT", f"read access to {addr:#x} but the VMA is PROT_NONE")
    if (flags & (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)) == (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE) \
            and vma.file is not None and vma.shared and not vma.file.shmem and k.era.longterm_file_pin_refused:
        raise KernelError("EFAULT", "long-term writable pin of a shared file mapping that needs dirty "
                                    "tracking is refused (writable_file_mapping_allowed())")
    if vma.file is not None and vma.linear_page_index(addr) >= vma.file.npages:
        raise KernelError("EFAULT", f"{addr:#x} maps a file page beyond EOF")


def try_grab_folio(k, folio, flags, mm, fast=False):
    """mm/gup.c: try_grab_folio(): take the reference or the pin.

    The trace names the era's function: the slow path's try_grab_page()
    (v5.7-v6.8), the fast path's try_grab_compound_head() (up to v5.15) or
    try_grab_folio() (v5.19-v6.8), today's try_grab_folio() and
    try_grab_folio_fast() (:func:`mmkit.era.kernel_name`).

    FOLL_PIN on a small folio adds 1024 to the refcount (the model also
    counts the pin); since v6.5 the shared zero page is never pinned
    (nothing is counted, ``era.zero_page_pinned``).  FOLL_GET adds 1, also
    on the zero page.
    """
    fn = kernel_name(k.era, "try_grab_folio_fast" if fast else "try_grab_folio")
    if flags & FOLL_PIN:
        if getattr(folio, "huge_zero", False):
            # is_zero_folio() tests only the 4 KiB zero pfn: the kernel pins the huge zero folio like any large
            # folio (refcount += 1, _pincount += 1); the model keeps it uncounted, as it shows it
            k.trace.emit(fn, "pinned (not shown)", "the huge zero folio: is_zero_folio() is false for it, so the "
                         "kernel adds 1 to its refcount and _pincount; the model shows no counters on it", folio.pfn)
            return
        if folio.zero and not k.era.zero_page_pinned:
            k.trace.emit(fn, "pin not counted", "the zero page is never pinned", folio.pfn)
            return
        if folio.large:
            # folio_has_pincount(): folio_ref_add(folio, refs), atomic_add(refs, &folio->_pincount)
            f = folio.folio
            f.refcount += 1
            f.pincount += 1
            k.trace.emit(fn, "pinned", "large folio: refcount += 1 -> {}, _pincount += 1 -> {}",
                         folio.pfn, f.refcount, f.pincount)
            return
        if k.era.anon_exclusive and folio.anon and not folio.anon_exclusive:
            raise InvariantViolation(f"FOLL_PIN on anon page {folio.pfn} that is not PageAnonExclusive "
                                     "(follow_page_pte() asserts this)")
        folio.refcount += GUP_PIN_COUNTING_BIAS
        folio.pincount += 1
        k.trace.emit(fn, "pinned", f"refcount += {GUP_PIN_COUNTING_BIAS} -> {folio.refcount}",
                     folio.pfn)
    else:
        folio.refcount += 1
        k.trace.emit(fn, "referenced", f"refcount += 1 -> {folio.refcount}", folio.pfn)


def gup_put_folio(k, folio, flags):
    """mm/gup.c: gup_put_folio(): undo try_grab_folio() exactly."""
    if flags & FOLL_PIN:
        if getattr(folio, "huge_zero", False) or (folio.zero and not k.era.zero_page_pinned):
            return
        if folio.large:
            f = folio.folio
            f.pincount -= 1
            folio_put(k, f)
            return
        folio.pincount -= 1
        folio.refcount -= GUP_PIN_COUNTING_BIAS - 1
        if folio.zero:
            folio.refcount -= 1         # the zero page is never freed
        else:
            folio_put(k, folio)
    elif folio.zero:
        folio.refcount -= 1
    else:
        folio_put(k, folio)


def _gup_fast(k, mm, vma, addr, flags):
    """mm/gup.c: gup_fast_pte_range() for one page: grab without faulting,
    or return a reason to fall back to the slow path."""
    e = mm.pte(addr)
    if e is None or not e.present:
        return None, "PTE not present"
    folio = e.folio
    if folio.zero:
        return None, "special PTE (zero page)"
    want_write = flags & FOLL_WRITE or (k.era.gup_breaks_cow and is_cow_mapping(vma))
    if want_write and not e.write:
        return None, "PTE not writable" + ("" if flags & FOLL_WRITE else " (5.8: COW break forced)")
    if (flags & (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE)) == (FOLL_PIN | FOLL_LONGTERM | FOLL_WRITE) \
            and not folio.anon and not folio.mapping.shmem and k.era.longterm_file_pin_refused:
        return None, "gup_fast_folio_allowed(): long-term writable pin of a file page"
    if not e.write and gup_must_unshare(k, None, flags, folio.folio.pages[0] if e.huge else folio):
        return None, "gup_must_unshare()"
    try_grab_folio(k, folio, flags, mm, fast=True)
    return folio, ""


def _follow_or_fault(k, mm, vma, addr, flags):
    """mm/gup.c: __get_user_pages() for one page: follow_page_pte(), and
    faultin_page() whenever it asks for a fault, then retry."""
    emit = k.trace.emit
    foll = flags
    if k.era.gup_breaks_cow and is_cow_mapping(vma) and not flags & FOLL_WRITE:
        foll |= FOLL_WRITE
        emit("should_force_cow_break", "add FOLL_WRITE", "read GUP on a COW mapping breaks COW first (5.8)")
    cow_done = False
    for _ in range(4):
        e = mm.pte(addr)
        if e is None:
            emit("follow_page_pte", "faultin_page", "PTE not present")
            handle_mm_fault(k, vma, addr, FAULT_FLAG_WRITE if foll & FOLL_WRITE else 0)
            cow_done = bool(foll & FOLL_WRITE)
            continue
        folio = e.folio
        if foll & FOLL_WRITE and not e.write and not (cow_done and e.dirty):
            # can_follow_write_pte(): a R/O PTE is followed for write only
            # after our own COW fault (FOLL_COW, 4.9-5.19) -- the VMA may
            # lack VM_WRITE in the 5.8 forced-COW case.
            emit("follow_page_pte", "faultin_page(write)", "FOLL_WRITE on a read-only PTE", folio.pfn)
            handle_mm_fault(k, vma, addr, FAULT_FLAG_WRITE)
            cow_done = True
            continue
        # a PMD: follow_huge_pmd() tests the head page (pmd_page())
        if not e.write and gup_must_unshare(k, vma, foll, folio.folio.pages[0] if e.huge else folio):
            emit("follow_page_pte", "faultin_page(unshare)",
                 "gup_must_unshare(): R/O pin of a page that is not known exclusive"
                 if folio.anon else "gup_must_unshare(): R/O long-term pin in a COW mapping", folio.pfn)
            handle_mm_fault(k, vma, addr, FAULT_FLAG_UNSHARE)
            continue
        try_grab_folio(k, folio, flags, mm)
        return folio
    raise InvariantViolation(f"GUP at {addr:#x} did not settle after 4 faults")


def get_user_pages(k, mm, start, npages, flags, fast=False):
    """mm/gup.c: get_user_pages() / pin_user_pages() (``fast``: the
    *_fast() variants, which try lockless first and fall back).

    All pages are checked (check_vma_flags()) before anything changes, so a
    failing call leaves no reference behind.  Returns the folios grabbed.
    The range is first walked VMA by VMA: the first unmapped address fails
    with EFAULT at once, so the cost follows what is mapped, not ``npages``
    (the kernel too stops at the first address without a VMA).
    """
    hole = mm.covered_until(start, start + npages * PAGE_SIZE)
    if hole < start + npages * PAGE_SIZE:
        check_vma_flags(k, None, flags, hole)          # raises EFAULT: no VMA there
    addrs = [start + i * PAGE_SIZE for i in range(npages)]
    vmas = [mm.find_vma(a) for a in addrs]
    for a, vma in zip(addrs, vmas):
        check_vma_flags(k, vma, flags, a)
    k.trace.emit("pin_user_pages" + ("_fast" if fast else "") if flags & FOLL_PIN
                 else "get_user_pages" + ("_fast" if fast else ""), flags_str(flags),
                 f"{npages} page(s) at {start:#x}")
    if flags & FOLL_PIN and not mm.has_pinned:
        mm.has_pinned = True
        if k.era.fork_copies_maybe_pinned:      # has_pinned came with 008cfe4418b3 (v5.9)
            k.trace.emit("mm_set_has_pinned_flag", "MMF_HAS_PINNED set", "first FOLL_PIN in this mm")
    out = []
    for a, vma in zip(addrs, vmas):
        if fast:
            folio, why = _gup_fast(k, mm, vma, a, flags)
            if folio is not None:
                out.append(folio)
                continue
            k.trace.emit("gup_fast", "fall back to the slow path", why)
        out.append(_follow_or_fault(k, mm, vma, a, flags))
    return out
