"""PageInfo: what ``k.page(p, addr)`` reports about one virtual page."""

from dataclasses import dataclass, fields

__all__ = ["PageInfo", "PAGE_SIZE", "GUP_PIN_COUNTING_BIAS"]

PAGE_SIZE = 4096
#: include/linux/mm.h: GUP_PIN_COUNTING_BIAS (1 << 10), the weight of one
#: FOLL_PIN on a small folio's refcount (since v5.7, "mm/gup: track FOLL_PIN pages").
GUP_PIN_COUNTING_BIAS = 1024


@dataclass(frozen=True)
class PageInfo:
    """One virtual page as seen through its page-table entry.

    A field is ``None`` where the backend cannot know it: the live kernel
    exposes no refcount or pincount to user space (see :mod:`mmkit.live`).

    Attributes
    ----------
    pfn : int or None
        Page frame number of the mapped page; ``None`` when not present.
    present : bool
        A present PTE maps the address.
    writable : bool
        The PTE is writable (a store would not fault).
    anon : bool
        PageAnon: the folio is anonymous (``folio->mapping`` is an anon_vma).
    zero_page : bool
        The PTE maps the shared zero page.
    exclusive : bool
        PageAnonExclusive (PG_anon_exclusive; kpageflags bit 34 live).
    mapcount : int
        ``folio_mapcount()`` of a small folio: page-table entries mapping it.
    refcount : int or None
        ``folio_ref_count()``: every holder, pins weighted by 1024.
    pincount : int or None
        Number of FOLL_PIN pins (the kernel keeps it only inside the refcount
        bias for small folios; the model counts it for you).
    maybe_pinned : bool or None
        ``folio_maybe_dma_pinned()``: refcount >= 1024 for a small folio.
    in_page_cache : bool
        The folio is in a file's page cache (``folio->mapping`` is an address_space).
    order : int
        folio_order(): 0 for a small folio, 2..8 for an mTHP, 9 for a PMD THP.
    nr_pages : int
        folio_nr_pages().
    head : bool
        PageHead: this page is the first page of a large folio (kpageflags
        COMPOUND_HEAD); False for a small folio, which is not compound.
    pmd_mapped : bool
        This address is mapped by a PMD (pmd_trans_huge()), not a PTE.
    large_mapcount, entire_mapcount : int or None
        folio_large_mapcount() and folio_entire_mapcount() of a large folio;
        None for a small one.
    nr_pages_mapped : int or None
        Pages of the folio mapped by at least one PTE (the FOLIO_PAGES_MAPPED
        part of ``_nr_pages_mapped``); None for a small folio and with
        CONFIG_NO_PAGE_MAPCOUNT, which does not keep it.
    folio_pincount : int or None
        ``_pincount`` of a large folio (one per FOLL_PIN); None for a small
        folio, which has no such field.
    maybe_mapped_shared : bool or None
        folio_maybe_mapped_shared() (v6.15); None in older eras.
    mm_ids : tuple
        The MM ids in the folio's two slots (MM_ID_DUMMY, 0, for a free
        slot), v6.15+, large folios; () otherwise.

    ``mapcount`` is what /proc/kpagecount shows for this page: for a page
    of a large folio its own PTE mappings plus the folio's PMD mappings
    (folio_precise_page_mapcount()), or with CONFIG_NO_PAGE_MAPCOUNT the
    folio's average (folio_average_page_mapcount()).  ``exclusive`` is this
    page's PageAnonExclusive as the kernel stores it (a PMD-mapped THP
    keeps it on the head page only).  ``pincount`` and ``maybe_pinned`` of a
    large folio are its ``_pincount`` and ``_pincount > 0``.
    """

    pfn: object = None
    present: bool = False
    writable: bool = False
    anon: bool = False
    zero_page: bool = False
    exclusive: bool = False
    mapcount: int = 0
    refcount: object = 0
    pincount: object = 0
    maybe_pinned: object = False
    in_page_cache: bool = False
    order: int = 0
    nr_pages: int = 1
    head: bool = False
    pmd_mapped: bool = False
    large_mapcount: object = None
    entire_mapcount: object = None
    nr_pages_mapped: object = None
    folio_pincount: object = None
    maybe_mapped_shared: object = None
    mm_ids: tuple = ()

    def as_dict(self):
        """The fields as a plain dict (for tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
