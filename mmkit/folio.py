"""Folios: physical pages and the counters that say who uses them.

The model keeps small (order-0) folios only; every counter is named and
documented after its kernel field so that large folios can come later
(include/linux/mm_types.h: struct folio).

Page contents are sparse: ``folio.data`` is an immutable ``bytes`` holding
the page up to its last non-zero byte written so far (the rest reads as
zeros).  A COW copy starts out sharing the very same ``bytes`` object, so a
page holding a few bytes costs a few bytes, and a copy costs nothing until
one side writes.
"""

from .pageinfo import PAGE_SIZE, GUP_PIN_COUNTING_BIAS

__all__ = ["Folio", "ZeroFolio", "folio_maybe_dma_pinned", "folio_expected_ref_count",
           "folio_mapped", "page_read", "page_write", "PAGE_SIZE",
           "GUP_PIN_COUNTING_BIAS"]


class Folio:
    """A small folio (one 4 KiB page) and its counters.

    Attributes
    ----------
    pfn : int
        Page frame number; never reused by the model, so a new pfn always
        means a new page.
    refcount : int
        ``folio->_refcount``: one per PTE, one for the page cache, one per
        FOLL_GET, 1024 per FOLL_PIN (small folio), one per pipe buffer, one
        while isolated for migration.  Not biased.
    mapcount : int
        ``folio_mapcount()``: the number of PTEs mapping the page (the kernel
        stores ``_mapcount`` off by one, -1 meaning unmapped; the model stores
        the count itself).  Special PTEs of the zero page are not counted.
    pincount : int
        Number of FOLL_PIN pins.  The kernel keeps a ``_pincount`` field only
        for large folios; for small ones a pin is visible only as 1024 on the
        refcount.  The model counts pins for display and checks.
    anon : bool
        PageAnon(): ``folio->mapping`` points to an anon_vma.
    anon_exclusive : bool
        PageAnonExclusive (PG_anon_exclusive, v5.19+): mapped by exactly one
        mm and not shared through COW.
    mapping : AnonVma or File or None
        ``folio->mapping``: the anon_vma (anon), the file (page cache), or
        None (the zero page; a page cache folio removed by truncation).
        Note the kernel's own warning: ``page_mapping()`` is the
        address_space, ``page_mapped()`` means "has PTEs".
    index : int
        ``folio->index``: page offset in the file, or the linear page index
        in the VMA for anon folios (linear_page_index()).
    data : bytes
        Sparse contents, see the module docstring.
    dirty : bool
        PG_dirty (a page-cache page written through a PTE or pwrite, or
        handed back dirty by unpin_user_pages_dirty_lock()).
    zero : bool
        This is the shared zero page (is_zero_pfn()).
    """

    __slots__ = ("pfn", "refcount", "mapcount", "pincount", "anon",
                 "anon_exclusive", "mapping", "index", "data", "dirty")
    zero = False

    def __init__(self, pfn, data=b""):
        self.pfn = pfn
        self.refcount = 1          # the allocation's reference
        self.mapcount = 0
        self.pincount = 0
        self.anon = False
        self.anon_exclusive = False
        self.mapping = None
        self.index = 0
        self.data = data
        self.dirty = False

    def __repr__(self):
        kind = "zero" if self.zero else "anon" if self.anon else "file" if self.mapping is not None else "page"
        ae = " AE" if self.anon_exclusive else ""
        return (f"<Folio pfn={self.pfn} {kind} ref={self.refcount} map={self.mapcount}"
                f" pin={self.pincount}{ae}>")

    @property
    def in_page_cache(self):
        """The folio is in a file's page cache (its mapping is a file)."""
        return self.mapping is not None and not self.anon


class ZeroFolio(Folio):
    """The shared zero page (include/linux/pgtable.h: is_zero_pfn(); the
    ``zero_pfn`` variable lives in mm/memory.c): one
    per kernel, mapped only by special read-only PTEs, never counted."""

    __slots__ = ()
    zero = True


def folio_mapped(folio):
    """include/linux/mm.h: folio_mapped(): at least one PTE maps it."""
    return folio.mapcount >= 1


def folio_maybe_dma_pinned(folio):
    """include/linux/mm.h: folio_maybe_dma_pinned(), small-folio form.

    True when the refcount is at least GUP_PIN_COUNTING_BIAS (1024).  False
    positives are possible (1024 plain references look like a pin); false
    negatives are not.
    """
    return folio.refcount >= GUP_PIN_COUNTING_BIAS


def folio_expected_ref_count(folio):
    """include/linux/mm.h: folio_expected_ref_count() (86ebd50224c0, v6.16;
    before it mm/migrate.c: folio_expected_refs(), v6.0-v6.15, 108ca8358139,
    and expected_page_refs() up to v5.19).

    The references a folio has when nobody else uses it: one for the page
    cache (non-anon folio with a mapping) plus one per mapping.  No swap
    cache and no fs-private data in the model.
    """
    expected = folio.mapcount
    if not folio.anon and folio.mapping is not None:
        expected += 1
    return expected


def page_read(data, off, n):
    """Read ``n`` bytes at ``off`` from sparse page contents."""
    chunk = data[off:off + n]
    if len(chunk) < n:
        chunk += bytes(n - len(chunk))
    return chunk


def page_write(data, off, chunk):
    """Return new sparse contents with ``chunk`` written at ``off``."""
    n = len(data)
    end = off + len(chunk)
    if end >= n:
        # the write reaches the end of what is stored: no tail to keep
        new = data[:off] + chunk if off <= n else data + bytes(off - n) + chunk
    else:
        new = data[:off] + chunk + data[end:]
    return new.rstrip(b"\0") if new and new[-1] == 0 else new
