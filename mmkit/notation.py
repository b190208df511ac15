"""The kit's one notation for the counters and PTE bits.

Tables, figures, traces, dumps, exercises and the live comparison all write a
page's state the same short way, and every place that shows it carries
:data:`KEY` (or the part of it that applies) so a learner never has to guess.

====  ======================================================================
r     refcount: ``folio_ref_count()``, every reference (mappings, GUP, pipes,
      the page cache, a pin's bias)
m     this page's mapcount, what ``/proc/kpagecount`` reports: for a small
      folio ``folio_mapcount()``, how many PTEs map it; for a page of a
      large folio ``folio_precise_page_mapcount()`` (its PTEs plus the
      folio's PMD mappings)
p     pins: ``FOLL_PIN`` references (each adds ``GUP_PIN_COUNTING_BIAS`` = 1024
      to the refcount of a small folio; 1 to a large folio's refcount and
      its ``_pincount``)
AE    PageAnonExclusive is set (absent: not set)
W     the PTE is writable; ``RO``: present but read-only
D     the PTE is dirty (the page was written through it)
====  ======================================================================

The zero page is *not counted*: its PTEs are special (``pte_mkspecial()``),
``vm_normal_page()`` returns NULL for them, so mapping or unmapping it moves
no counter.  It is shown as ``zero page`` without numbers.

Examples
--------
>>> counters(2, 2, 0, False)
'r2 m2 p0'
>>> counters(1, 1, 0, True)
'r1 m1 p0 AE'
>>> pte_bits(write=False, dirty=True)
'RO D'
"""

__all__ = ["KEY", "KEY_LINE", "NAMES", "counters", "pte_bits", "key_for"]

#: short symbol -> what it means, in the order the symbols are written
NAMES = {
    "r": "refcount (folio_ref_count)",
    "m": "this page's mapcount (/proc/kpagecount; folio_mapcount() for a small folio, "
         "folio_precise_page_mapcount() for a page of a large one)",
    "p": "pins (FOLL_PIN; each adds 1024 to a small folio's refcount, 1 to a large folio's "
         "refcount and _pincount)",
    "AE": "PageAnonExclusive set",
    "W": "PTE writable",
    "RO": "PTE read-only",
    "D": "PTE dirty",
}

#: one line that explains every symbol
KEY_LINE = "key: " + "; ".join(f"{s} = {m}" for s, m in NAMES.items()) + \
    "; zero page = not counted"

KEY = KEY_LINE


def key_for(symbols):
    """The key restricted to ``symbols`` (in the kit's order).

    >>> key_for(["AE", "r"])
    'key: r = refcount (folio_ref_count); AE = PageAnonExclusive set'
    """
    wanted = set(symbols)
    unknown = wanted - set(NAMES) - {"zero page"}
    if unknown:
        raise ValueError(f"no such symbol in the notation: {sorted(unknown)}; known: {list(NAMES)}")
    parts = [f"{s} = {m}" for s, m in NAMES.items() if s in wanted]
    if "zero page" in wanted:
        parts.append("zero page = not counted")
    return "key: " + "; ".join(parts)


def counters(refcount, mapcount, pincount, exclusive, zero=False):
    """A page's counters in the kit's notation: ``r2 m2 p0`` (+ ``AE``)."""
    if zero:
        return "zero page"
    return f"r{refcount} m{mapcount} p{pincount}" + (" AE" if exclusive else "")


def pte_bits(write, dirty=False):
    """A present PTE's bits: ``W`` or ``RO``, then ``D`` when dirty."""
    return ("W" if write else "RO") + (" D" if dirty else "")
