"""Folios: physical pages and the counters that say who uses them.

Small (order-0) folios are :class:`Folio`; large anonymous folios (PMD THP,
order 9, and mTHP, orders 2..8) are :class:`LargeFolio`, whose pages are
:class:`Page` objects (struct page of a large folio).  Every counter is
named and documented after its kernel field (include/linux/mm_types.h:
struct folio).  A PTE maps a *page*: a small folio is its own page, a large
folio's PTEs map its :class:`Page` objects.

Page contents are sparse: ``folio.data`` is an immutable ``bytes`` holding
the page up to its last non-zero byte written so far (the rest reads as
zeros).  A COW copy starts out sharing the very same ``bytes`` object, so a
page holding a few bytes costs a few bytes, and a copy costs nothing until
one side writes.
"""

from .pageinfo import PAGE_SIZE, GUP_PIN_COUNTING_BIAS

__all__ = ["Folio", "ZeroFolio", "LargeFolio", "Page", "MM_ID_DUMMY", "folio_maybe_dma_pinned", "folio_expected_ref_count",
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
    #: folio_test_large(): False for a small folio (see :class:`Page`).
    large = False
    order = 0

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
    """include/linux/mm.h: folio_maybe_dma_pinned().

    A large folio (or a page of one) has ``_pincount``: exactly
    ``pincount > 0`` (folio_has_pincount()).  The small-folio form:

    True when the refcount is at least GUP_PIN_COUNTING_BIAS (1024).  False
    positives are possible (1024 plain references look like a pin); false
    negatives are not.
    """
    if folio.large:
        return folio.pincount > 0
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
    if not off and end >= n:
        # the write covers everything stored (the common rewrite of a page)
        return chunk.rstrip(b"\0") if chunk and chunk[-1] == 0 else chunk
    if end >= n:
        # the write reaches the end of what is stored: no tail to keep
        new = data[:off] + chunk if off <= n else data + bytes(off - n) + chunk
    else:
        new = data[:off] + chunk + data[end:]
    return new.rstrip(b"\0") if new and new[-1] == 0 else new


#: include/linux/mm_types.h: MM_ID_DUMMY, the id of a free MM slot (v6.15).
MM_ID_DUMMY = 0


class LargeFolio:
    """A large anonymous folio: ``nr = 1 << order`` pages, one set of counters.

    The kernel keeps these counters in the folio's first tail page
    (include/linux/mm_types.h: struct folio, ``_large_mapcount``,
    ``_entire_mapcount``, ``_nr_pages_mapped``, ``_pincount``; ``_mm_id``
    and ``_mm_id_mapcount`` since v6.15).  The model stores counts, not the
    kernel's off-by-one values (a stored -1 is a count of 0 here).

    Attributes
    ----------
    pfn : int
        The head page's pfn; pfns are aligned to ``nr``, as the buddy
        allocator hands out a 2**order block.
    order, nr : int
        folio_order(), folio_nr_pages().
    pages : list of Page
        The struct pages; ``pages[0]`` is the head.
    refcount : int
        ``_refcount``: one per PTE and one per PMD mapping (do_anonymous_page()
        takes ``folio_ref_add(folio, nr_pages - 1)`` on top of the allocation's
        reference; __split_huge_pmd_locked() adds ``HPAGE_PMD_NR - 1``), one
        per FOLL_GET, **one** per FOLL_PIN (not 1024: a large folio has
        ``_pincount``, include/linux/mm.h: folio_has_pincount()).
    large_mapcount : int
        folio_large_mapcount(): every PTE and every PMD mapping any part of
        the folio (05c5323b2a34 "mm: track mapcount of large folios in single
        value", v6.10; the model keeps it in every era, it is what
        folio_mapcount() returned all along).
    entire_mapcount : int
        folio_entire_mapcount(): PMD mappings of the whole folio.
    nr_pages_mapped : int
        The FOLIO_PAGES_MAPPED part of ``_nr_pages_mapped``: pages mapped by
        at least one PTE (the kernel adds ENTIRELY_MAPPED, 0x800000, while a
        PMD maps the folio).  Not kept with CONFIG_NO_PAGE_MAPCOUNT.
    pincount : int
        ``_pincount``: FOLL_PIN pins.
    mm_id, mm_id_mapcount : list of int
        The two MM slots (v6.15, CONFIG_MM_ID): the id of the mm owning each
        slot (MM_ID_DUMMY when free) and that mm's mappings, stored as the
        kernel stores them (-1 for a free slot).
    mm_ids_shared : bool
        FOLIO_MM_IDS_SHARED_BIT: "maybe mapped shared".
    deferred : bool
        On the deferred split queue (folio_test_partially_mapped(),
        deferred_split_folio()).
    """

    large = True
    zero = False

    __slots__ = ("pfn", "order", "nr", "pages", "refcount", "large_mapcount", "entire_mapcount",
                 "nr_pages_mapped", "pincount", "anon", "mapping", "index", "dirty", "mm_id",
                 "mm_id_mapcount", "mm_ids_shared", "deferred")

    def __init__(self, pfn, order, data=None):
        self.pfn = pfn
        self.order = order
        self.nr = 1 << order
        self.pages = [Page(self, pfn + i, i, data[i] if data else b"") for i in range(self.nr)]
        self.refcount = 1
        self.large_mapcount = 0
        self.entire_mapcount = 0
        self.nr_pages_mapped = 0
        self.pincount = 0
        self.anon = False
        self.mapping = None
        self.index = 0
        self.dirty = False
        self.mm_id = [MM_ID_DUMMY, MM_ID_DUMMY]
        self.mm_id_mapcount = [-1, -1]
        self.mm_ids_shared = False
        self.deferred = False

    def __repr__(self):
        return (f"<LargeFolio pfn={self.pfn} order={self.order} ref={self.refcount} "
                f"large_map={self.large_mapcount} entire={self.entire_mapcount} pin={self.pincount}>")

    @property
    def mapcount(self):
        """folio_mapcount() of a large folio: folio_large_mapcount()."""
        return self.large_mapcount

    @property
    def folio(self):
        """page_folio() of the folio itself (so ``x.folio`` works on a Page and a LargeFolio)."""
        return self

    @property
    def in_page_cache(self):
        return False


class Page:
    """One page (struct page) of a :class:`LargeFolio`.

    What a PTE maps.  It answers the questions order-0 code asks of a folio
    (``pfn``, ``data``, ``anon``, ``refcount``...) from its folio, and keeps
    its own per-page state:

    Attributes
    ----------
    folio : LargeFolio
        page_folio().
    i : int
        folio_page_idx(): 0 for the head.
    pte_mapcount : int
        The page's own ``_mapcount`` + 1: PTEs mapping this page
        (CONFIG_PAGE_MAPCOUNT; not kept with CONFIG_NO_PAGE_MAPCOUNT).
    anon_exclusive : bool
        PageAnonExclusive of this page as the kernel stores it: per page for
        a PTE-mapped THP, only on the head for a PMD mapping
        (mm/rmap.c: __folio_add_anon_rmap(): "RMAP_LEVEL_PMD:
        SetPageAnonExclusive(page)").
    """

    large = True
    zero = False

    __slots__ = ("folio", "pfn", "i", "pte_mapcount", "anon_exclusive", "data")

    def __init__(self, folio, pfn, i, data=b""):
        self.folio = folio
        self.pfn = pfn
        self.i = i
        self.pte_mapcount = 0
        self.anon_exclusive = False
        self.data = data

    def __repr__(self):
        return f"<Page pfn={self.pfn} of {self.folio!r} map={self.pte_mapcount}{' AE' if self.anon_exclusive else ''}>"

    # what order-0 code reads from "the folio" a PTE maps
    @property
    def refcount(self):
        return self.folio.refcount

    @refcount.setter
    def refcount(self, v):
        self.folio.refcount = v

    @property
    def pincount(self):
        return self.folio.pincount

    @property
    def anon(self):
        return self.folio.anon

    @property
    def mapping(self):
        return self.folio.mapping

    @property
    def index(self):
        return self.folio.index + self.i

    @property
    def dirty(self):
        return self.folio.dirty

    @dirty.setter
    def dirty(self, v):
        self.folio.dirty = v

    @property
    def in_page_cache(self):
        return False

    @property
    def mapcount(self):
        """folio_precise_page_mapcount(): this page's PTE mappings plus the
        folio's entire (PMD) mappings -- what /proc/kpagecount shows with
        CONFIG_PAGE_MAPCOUNT (fs/proc/internal.h)."""
        return self.pte_mapcount + self.folio.entire_mapcount
