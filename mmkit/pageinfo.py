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

    def as_dict(self):
        """The fields as a plain dict (for tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
