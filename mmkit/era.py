"""Kernel eras: the rules that changed between kernels, as data.

An era is a small frozen object.  The fault, fork, GUP and mprotect paths
ask it questions instead of branching on version numbers, so each era's
behaviour -- bugs included -- comes out of the same code.  The presets follow
table 8.12 of the facts reference (``kernel-mm-facts.md``), small anonymous
pages, no swap, no KSM.

Flip one rule of a preset to see what it does::

    >>> from mmkit.era import era
    >>> e = era("6.18").replace(gup_unshares_anon=False)
    >>> e.name
    '6.18*'
    >>> e.gup_unshares_anon
    False
"""

from dataclasses import dataclass, fields, replace as _replace

from .errors import InvalidArgument

__all__ = ["Era", "ERAS", "era", "DEFAULT_ERA"]

DEFAULT_ERA = "6.18"

_REUSE_RULES = ("mapcount", "refcount")
_MPROTECT_RULES = ("none", "dirty", "exclusive")


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
    mprotect_upgrade : {"none", "dirty", "exclusive"}
        Whether mprotect() adding write makes a private anon PTE writable
        without a fault (mm/mprotect.c: can_change_pte_writable()):
        ``"none"`` before v6.0; ``"dirty"``: AE and dirty (64fe24a3e05e, v6.0);
        ``"exclusive"``: any AE page (v6.2).
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

    def __post_init__(self):
        if self.reuse_rule not in _REUSE_RULES:
            raise InvalidArgument(f"reuse_rule must be one of {_REUSE_RULES}, not {self.reuse_rule!r}")
        if self.mprotect_upgrade not in _MPROTECT_RULES:
            raise InvalidArgument(f"mprotect_upgrade must be one of {_MPROTECT_RULES}, not {self.mprotect_upgrade!r}")
        if self.gup_unshares_anon and not self.anon_exclusive:
            raise InvalidArgument("gup_unshares_anon needs anon_exclusive: unsharing is decided on PageAnonExclusive")

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


_BEFORE_6_5 = dict(zero_page_pinned=True, longterm_file_pin_refused=False)

ERAS = {
    "5.7": Era("5.7", reuse_rule="mapcount", gup_breaks_cow=False, fork_copies_maybe_pinned=False,
               anon_exclusive=False, gup_unshares_anon=False, unshare_longterm_cow=False,
               mprotect_upgrade="none", **_BEFORE_6_5),
    "5.8": Era("5.8", reuse_rule="mapcount", gup_breaks_cow=True, fork_copies_maybe_pinned=False,
               anon_exclusive=False, gup_unshares_anon=False, unshare_longterm_cow=False,
               mprotect_upgrade="none", **_BEFORE_6_5),
    "5.9": Era("5.9", reuse_rule="refcount", gup_breaks_cow=False, fork_copies_maybe_pinned=True,
               anon_exclusive=False, gup_unshares_anon=False, unshare_longterm_cow=False,
               reuse_moves_anon_rmap=False, mprotect_upgrade="none", **_BEFORE_6_5),
    "5.19": Era("5.19", anon_exclusive=True, gup_unshares_anon=True, unshare_longterm_cow=False,
                mprotect_upgrade="none", **_BEFORE_6_5),
    "6.2": Era("6.2", **_BEFORE_6_5),
    "6.18": Era("6.18"),
}


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
        return ERAS[spec]
    except (KeyError, TypeError):
        raise InvalidArgument(f"unknown era {spec!r}; presets are {', '.join(ERAS)}") from None
