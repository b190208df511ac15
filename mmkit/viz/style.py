"""Presets and the visual encoding of the rmap drawing.

Two presets: ``"lecture"`` (16:9, large fonts, for a projector) and
``"compact"`` (a notebook cell).  The palette is Okabe and Ito's
colour-blind-safe one; every distinction the drawing makes is also made by
a shape, a hatch, a line style or a word, so that a greyscale print keeps
it: anon folios are square, page-cache folios rounded, the zero page
dotted, an orphan saw-toothed, a pinned folio hatched; writable PTEs are
black with white text, read-only ones white; a writable mapping is a solid
line, a read-only one dashed.

Examples
--------
>>> from mmkit.viz.style import preset
>>> preset("lecture").dpi
96
>>> preset("compact").font < preset("lecture").font
True
"""

from dataclasses import dataclass

from ..errors import InvalidArgument

__all__ = ["Preset", "PRESETS", "preset", "PALETTE", "HIGHLIGHT", "EDGE_STYLES", "card_props", "card_variant",
           "edge_style"]

#: Okabe & Ito (2008), "Color Universal Design".
PALETTE = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
    "grey": "#7f7f7f",
}
#: Light tints of the palette for card fills (text stays black on them).
_TINT = {"sky": "#d5ebf8", "orange": "#f9e2b2", "green": "#c4e8dc", "purple": "#f1d9e7",
         "blue": "#cfe0ef", "grey": "#e4e4e4", "white": "#ffffff"}
HIGHLIGHT = PALETTE["vermillion"]


@dataclass(frozen=True)
class Preset:
    """Sizes of one drawing style.

    Attributes
    ----------
    name : str
    width, height : float
        Figure size in inches for a small state; the width grows (up to
        ``max_width``) when the layout needs more room.
    dpi : int
        Pixels per inch of the PNG the widget shows.
    unit_px : float
        Pixels wanted per layout unit (one page slot).
    max_width : float
        Widest figure, in inches.
    font, small, title : float
        Point sizes of node labels, of annotations and legend, of the title.
    lw : float
        Base line width in points.
    legend_h : float
        Height of the legend band in inches (0: no legend).
    legend : float
        Point size of the key's text (it only shrinks, to at most 3/4 of
        this, when a frame needs more entries than the band holds).
    """

    name: str
    width: float
    height: float
    dpi: int
    unit_px: float
    max_width: float
    font: float
    small: float
    title: float
    lw: float
    legend_h: float
    legend: float = 10.0

    def units(self, chars, font=None):
        """Width in layout units of a card holding ``chars`` characters."""
        pt = font or self.font
        px = (chars * 0.62 * pt + 1.2 * pt) * self.dpi / 72
        return px / self.unit_px


PRESETS = {
    "lecture": Preset("lecture", width=40 / 3, height=7.5, dpi=96, unit_px=34, max_width=33,
                      font=13, small=11, title=16, lw=1.8, legend_h=1.05, legend=12),
    "compact": Preset("compact", width=10, height=5.8, dpi=80, unit_px=28, max_width=25,
                      font=9.5, small=8.5, title=11.5, lw=1.2, legend_h=1.15, legend=9.5),
}


def preset(spec="compact"):
    """The :class:`Preset` named ``spec`` (or ``spec`` itself if it is one).

    Raises
    ------
    InvalidArgument
        For an unknown name.
    """
    if isinstance(spec, Preset):
        return spec
    try:
        return PRESETS[spec]
    except (KeyError, TypeError):
        raise InvalidArgument(f"unknown preset {spec!r}; presets are {', '.join(PRESETS)}") from None


# -- cards (nodes) ---------------------------------------------------------------
#: kind -> (fill, edge colour, boxstyle, text colour, weight)
_CARD = {
    "task": (PALETTE["blue"], PALETTE["black"], "round,pad=0.35", "white", "bold"),
    "task_exited": (_TINT["grey"], PALETTE["grey"], "round,pad=0.35", "#444444", "bold"),
    "vma": (_TINT["blue"], PALETTE["blue"], "square,pad=0.3", "black", "normal"),
    "pte_w": ("#111111", "#111111", "square,pad=0.22", "white", "bold"),
    "pte_ro": ("white", "#111111", "square,pad=0.22", "black", "bold"),
    "pte_mig": ("white", PALETTE["vermillion"], "square,pad=0.22", "black", "bold"),
    "folio_anon": (_TINT["sky"], PALETTE["black"], "square,pad=0.3", "black", "normal"),
    "folio_file": (_TINT["orange"], PALETTE["black"], "round,pad=0.3", "black", "normal"),
    "folio_zero": (_TINT["grey"], PALETTE["black"], "round,pad=0.3", "black", "normal"),
    "folio_orphan": ("white", PALETTE["vermillion"], "sawtooth,pad=0.35", "black", "normal"),
    "folio_page": ("white", PALETTE["black"], "square,pad=0.3", "black", "normal"),
    "anon_vma": (_TINT["green"], PALETTE["green"], "round4,pad=0.3", "black", "normal"),
    "file": (_TINT["orange"], PALETTE["orange"], "square,pad=0.3", "black", "bold"),
    "holder_pin": (_TINT["purple"], PALETTE["purple"], "round,pad=0.3", "black", "bold"),
    "holder_ref": (_TINT["purple"], PALETTE["purple"], "round,pad=0.3", "black", "normal"),
    "holder_pipe": (_TINT["purple"], PALETTE["purple"], "rarrow,pad=0.3", "black", "normal"),
}


def card_variant(attrs):
    """The card variant (a key of the card table) for a node's attributes."""
    kind = attrs["kind"]
    if kind == "task":
        return "task" if attrs["alive"] else "task_exited"
    if kind == "pte":
        return "pte_mig" if attrs.get("migration") else "pte_w" if attrs["write"] else "pte_ro"
    if kind == "folio":
        if attrs["zero"]:
            return "folio_zero"
        if attrs["orphan"]:
            return "folio_orphan"
        if attrs["anon"]:
            return "folio_anon"
        return "folio_file" if attrs["in_page_cache"] else "folio_page"
    if kind == "holder":
        return "holder_" + attrs["holder_kind"]
    return kind


def card_props(variant, state, pinned, p, dense=False):
    """Text and box properties of a card.

    Parameters
    ----------
    variant : str
        From :func:`card_variant`.
    state : {"same", "new", "changed", "gone"}
        Change since the previous step: new and changed cards get a thick
        vermillion outline, gone ones are drawn faded with a dashed outline.
    pinned : bool
        Hatch the card (a FOLL_PIN holds the folio).
    p : Preset
    dense : bool
        Smaller text for crowded drawings.
    """
    fc, ec, box, tc, weight = _CARD[variant]
    lw = p.lw * (1.6 if variant.startswith("folio") else 1.0)
    ls = "solid"
    if variant == "folio_zero":
        ls = "dotted"
        lw = p.lw * 1.8
    if variant in ("task_exited", "pte_mig"):
        ls = "dashed"
    alpha = 1.0
    if state in ("new", "changed"):
        ec, lw = HIGHLIGHT, p.lw * 2.6
        if variant == "folio_zero":
            ls = "dotted"
    elif state == "gone":
        alpha, ls = 0.35, "dashed"
    size = p.font * (0.8 if dense else 1.0)
    if variant.startswith("pte"):
        size *= 0.85
    bbox = dict(boxstyle=box, facecolor=fc, edgecolor=ec, linewidth=lw, linestyle=ls, alpha=alpha)
    if pinned:
        bbox.update(hatch="////", hatchcolor=PALETTE["purple"])
    return dict(fontsize=size, color=tc, fontweight=weight, alpha=alpha, ha="center", va="center",
                multialignment="center", linespacing=1.15, bbox=bbox, zorder=3)


# -- edges -------------------------------------------------------------------------
#: edge kind -> (colour, linestyle, width factor, z rank); the rmap side is
#: drawn first and thin, the mappings of pages last and strong.
EDGE_STYLES = {
    "mm": (PALETTE["grey"], "solid", 0.8, 1),
    "page_table": (PALETTE["grey"], "solid", 0.6, 1),
    "pte_w": (PALETTE["black"], "solid", 1.3, 2),
    "pte_ro": (PALETTE["black"], (0, (4, 2.5)), 1.3, 2),
    "pte_mig": (PALETTE["vermillion"], (0, (1, 2)), 1.3, 2),
    "mapping": (PALETTE["green"], (0, (1, 2)), 1.0, 0),
    "avc": (PALETTE["green"], (0, (5, 2, 1, 2)), 0.9, 0),
    "parent": (PALETTE["green"], "solid", 0.7, 0),
    "page_cache": (PALETTE["orange"], (0, (1, 2)), 1.2, 0),
    "i_mmap": (PALETTE["orange"], (0, (5, 2, 1, 2)), 1.0, 0),
    "hold_pin": (PALETTE["purple"], "solid", 2.0, 3),
    "hold_ref": (PALETTE["purple"], (0, (3, 2)), 1.6, 3),
    "hold_pipe": (PALETTE["purple"], (0, (3, 2)), 1.6, 3),
}


def edge_style(attrs):
    """The key of :data:`EDGE_STYLES` for an edge's attributes."""
    kind = attrs["kind"]
    if kind == "pte":
        return "pte_mig" if attrs.get("migration") else "pte_w" if attrs["write"] else "pte_ro"
    if kind == "hold":
        return "hold_" + attrs["holder_kind"]
    return kind
