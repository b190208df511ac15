"""Drawing the rmap graph with matplotlib, fast enough to redraw at every step.

A :class:`GraphView` owns one Figure and reuses it: the static part (white
background, row names, the key explaining the encoding) is drawn once and
kept as a pixel background; each frame restores it and draws only the edges
(one LineCollection) and the cards.  A card -- a node's label in its box --
is rasterised once per (text, style, dpi) and then pasted as an image, so a
redraw costs little more than the PNG encoding.  Exported files (SVG, PDF)
go through matplotlib's normal drawing and stay vector.

Examples
--------
>>> from mmkit import Kernel
>>> from mmkit.viz import GraphView, rmap_graph
>>> k = Kernel()
>>> p = k.spawn("parent")
>>> a = p.mmap(1)
>>> p.write(a, b"x")
>>> view = GraphView("compact")
>>> g0 = rmap_graph(k)
>>> c = p.fork("child")
>>> png = view.draw(rmap_graph(k), prev=g0, title="fork").png()
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", view.drawn[("pte", p.pid, a)]
(True, 'changed')
"""

import io
import math
import textwrap

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox, IdentityTransform, blended_transform_factory

from ..errors import InvalidArgument
from .graph import graph_diff, rmap_graph
from .layout import ROWS, Layout
from .style import EDGE_STYLES, HIGHLIGHT, PALETTE, card_props, card_variant, edge_style, preset as _preset

__all__ = ["GraphView", "draw", "RMAP_AUTO", "LEGEND"]

_ROW_NAMES = (("task", "processes"), ("vma", "VMAs"), ("pte", "page table"), ("folio", "folios"),
              ("holder", "pins · pipes"))
_RMAP_EDGES = ("mapping", "avc", "parent", "page_cache", "i_mmap")
#: Above this many folio -> mapping edges, ``rmap="auto"`` draws only the changed ones.
RMAP_AUTO = 10
_RMAP_CAP = 0.6      # the bow of a long rmap edge, in layout units
_SPRITES = {}
_SPRITE_LIMIT = 3000
_BG_CACHE = 12       # frame backgrounds kept (one per legend shown)
_LEGEND_PLANS = {}

#: Every symbol the key can explain: symbol -> (kind, card variant or edge
#: style, sample text, caption).  A frame's key lists only the symbols the
#: frame draws (:meth:`GraphView.symbols`), in this order.
LEGEND = {
    "pte_w": ("card", "pte_w", "W", "writable PTE"),
    "pte_ro": ("card", "pte_ro", "RO", "read-only PTE"),
    "pte_mig": ("card", "pte_mig", "mig", "migration entry"),
    "folio_anon": ("card", "folio_anon", "pfn 7", "anon page"),
    "folio_file": ("card", "folio_file", "pfn 7", "page-cache page"),
    "folio_page": ("card", "folio_page", "pfn 7", "file page out of the cache"),
    "folio_zero": ("card", "folio_zero", "zero page", "not counted"),
    "folio_orphan": ("card", "folio_orphan", "orphan 7", "truncated, still held"),
    "pinned": ("pinned", "folio_anon", "pfn 7", "pinned (FOLL_PIN)"),
    "counters": ("text", None, "r m p", "= refcount, mapcount, pins"),
    "AE": ("text", None, "AE", "= PageAnonExclusive"),
    "LT": ("text", None, "LT", "= FOLL_LONGTERM"),
    "line_pte_w": ("line", "pte_w", None, "mapped writable"),
    "line_pte_ro": ("line", "pte_ro", None, "mapped read-only"),
    "line_pte_mig": ("line", "pte_mig", None, "migration entry"),
    "line_hold_pin": ("line", "hold_pin", None, "a pin holds it"),
    "line_hold_ref": ("line", "hold_ref", None, "a GUP reference holds it"),
    "line_hold_pipe": ("line", "hold_pipe", None, "a pipe holds it"),
    "line_mapping": ("line", "mapping", None, "page → its anon_vma / file"),
    "line_page_cache": ("line", "page_cache", None, "file → cached page"),
    "line_avc": ("line", "avc", None, "anon_vma → VMA (AVC)"),
    "line_parent": ("line", "parent", None, "anon_vma → parent"),
    "line_i_mmap": ("line", "i_mmap", None, "file → VMA (i_mmap)"),
    "changed": ("changed", "folio_anon", "new", "new or changed this step"),
    "gone": ("gone", "folio_anon", "gone", "gone this step"),
}


def draw(state, preset="compact", prev=None, title="", caption="", **graph_options):
    """Draw a kernel (or a graph) once; returns the matplotlib Figure.

    Parameters
    ----------
    state : Kernel or networkx.MultiDiGraph
    preset : {"compact", "lecture"} or Preset
    prev : networkx.MultiDiGraph, optional
        A graph of an earlier state (``rmap_graph(k)`` taken before the
        operation): what changed since then is highlighted.
    title, caption : str
    **graph_options
        Passed to :func:`~mmkit.viz.rmap_graph` when ``state`` is a kernel.

    Examples
    --------
    >>> from mmkit import Kernel
    >>> k = Kernel()
    >>> _ = k.spawn("init")
    >>> fig = draw(k, preset="lecture")
    >>> [round(float(x)) for x in fig.get_size_inches() * fig.dpi]
    [1280, 720]
    """
    g = state if hasattr(state, "nodes") else rmap_graph(state, **graph_options)
    view = GraphView(preset)
    view.layout.update(g)
    view.fit()
    view.draw(g, prev=prev, title=title, caption=caption)
    fig = view.figure
    fig._repr_png_ = view.png          # shown in notebooks without pyplot's inline backend
    return fig


class GraphView:
    """A reusable drawing of successive rmap graphs.

    Parameters
    ----------
    preset : {"compact", "lecture"} or Preset
    layout : Layout, optional
        Positions to use (and extend); a new one by default.
    legend : bool
        Draw the key explaining the encoding below the graph.
    rmap : {"auto", "all", "none"}
        Which reverse-mapping edges to draw.  ``"all"``; ``"none"`` (only the
        anon_vma and file nodes); ``"auto"``: all of them while there are at
        most :data:`RMAP_AUTO` folio -> anon_vma / file edges, else only those
        of the folios that changed in this step (the AVC, parent and i_mmap
        edges are always drawn).

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    layout : Layout
    drawn : dict
        node -> ``"new"``, ``"changed"``, ``"same"`` or ``"gone"`` for the
        nodes of the last frame (what the highlighting showed).
    notes : dict
        node -> the change annotation drawn next to it.
    dropped : list
        Nodes whose change annotation found no free place in the last frame
        (their thick outline still shows the change).
    paths : dict
        ``(u, v, key)`` -> the points of each edge drawn in the last frame
        (parallel edges get distinct curves).
    """

    def __init__(self, preset="compact", layout=None, legend=True, rmap="auto"):
        if rmap not in ("auto", "all", "none"):
            raise InvalidArgument(f"rmap must be 'auto', 'all' or 'none', not {rmap!r}")
        self.rmap = rmap
        self.preset = p = _preset(preset)
        self.layout = layout if layout is not None else Layout(p)
        self.legend = legend and p.legend_h > 0
        self.figure = Figure(figsize=(p.width, p.height), dpi=p.dpi, facecolor="white")
        self.canvas = FigureCanvasAgg(self.figure)
        self.drawn = {}
        self.notes = {}
        self.dropped = []
        self.paths = {}
        self._edge_symbols = set()
        self._cards = {}
        self._note_pool = []
        self._bgs = {}
        self._fitted = False
        self._dense = False
        self._centers = (0.0, 1.0)
        self._static = []
        self._build()

    # -- public -------------------------------------------------------------------
    def fit(self):
        """Size the figure and the x range to everything the layout has placed.

        Called once after planning a run; later frames keep the size (and only
        widen the x range if new nodes fall outside it)."""
        p = self.preset
        lo, hi = self.layout.centers()
        left, right = self._margins()
        need = ((hi - lo) * p.unit_px + left + right) / p.dpi
        width = min(max(need, p.width), p.max_width)
        if abs(width - self.figure.get_figwidth()) > 1e-6:
            self.figure.set_size_inches(width, p.height)
            self._build()
        self._set_xlim(lo, hi)
        self._fitted = True
        return self

    def draw(self, g, prev=None, title="", caption="", era=""):
        """Draw graph ``g``, highlighting what changed since graph ``prev``.

        Parameters
        ----------
        g : networkx.MultiDiGraph
            From :func:`~mmkit.viz.rmap_graph`.
        prev : networkx.MultiDiGraph, optional
            The previous step's graph; None draws ``g`` without highlights.
        title : str
            Bold, top left (``"step 2/5 · fork"``).
        caption : str
            One or two lines under the title (the step's explanation).
        era : str
            Shown top right (``"era 6.18"``).

        Returns
        -------
        GraphView
            self, so that ``view.draw(g).png()`` reads well.
        """
        if prev is not None:
            self.layout.update(prev)          # so that what is gone has a place to fade at
        self.layout.update(g)
        if not self._fitted:
            self.fit()
        else:
            lo, hi = self.layout.centers()
            if lo < self._centers[0] or hi > self._centers[1]:
                self._set_xlim(min(lo, self._centers[0]), max(hi, self._centers[1]))
        diff = graph_diff(prev, g) if prev is not None else None
        self._frame(g, prev, diff, title, caption, era)
        return self

    def png(self):
        """The current frame as PNG bytes (fast zlib level, RGB)."""
        from PIL import Image
        w, h = self.canvas.get_width_height(physical=True)
        im = Image.frombuffer("RGBA", (w, h), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
        buf = io.BytesIO()
        im.save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def rgba(self):
        """The current frame as an (H, W, 4) uint8 array (a copy)."""
        return np.asarray(self.canvas.buffer_rgba()).copy()

    def _repr_png_(self):
        return self.png()

    def symbols(self, g, prev=None):
        """The symbols of :data:`LEGEND` the last frame drew (of graph ``g``,
        ``prev`` its previous graph), in the key's order."""
        used = set()
        for n, state in self.drawn.items():
            a = g.nodes[n] if n in g else prev.nodes[n]
            variant = card_variant(a)
            if variant in LEGEND:
                used.add(variant)
            if a["kind"] == "folio":
                used.add("counters" if not a["zero"] else "folio_zero")
                if a["exclusive"]:
                    used.add("AE")
                if a["pincount"] > 0:
                    used.add("pinned")
            if a["kind"] == "holder" and a.get("longterm"):
                used.add("LT")
            if state in ("new", "changed"):
                used.add("changed")
            elif state == "gone":
                used.add("gone")
        used |= self._edge_symbols
        return tuple(s for s in LEGEND if s in used)

    # -- figure construction ----------------------------------------------------------
    def _build(self):
        """(Re)create the axes and static artists for the current figure size."""
        p, fig = self.preset, self.figure
        fig.clear()
        self._cards.clear()
        self._note_pool.clear()
        H = fig.get_figheight()
        key_h = p.legend_h / H if self.legend else 0.0
        title_h = (p.title * 2 + p.small * 2.6) / 72 / H
        self.ax = ax = fig.add_axes([0.0, key_h, 1.0, 1.0 - key_h - title_h])
        ax.set_ylim(-0.15, 5.75)
        ax.set_xlim(0, 1)
        ax.axis("off")
        self.lines = LineCollection([], zorder=1, capstyle="butt", joinstyle="round")
        ax.add_collection(self.lines)
        blend = blended_transform_factory(ax.transAxes, ax.transData)
        self._static = []
        for row, name in _ROW_NAMES:
            y = ROWS[row] if row != "folio" else (ROWS["folio"] + ROWS["folio2"]) / 2
            self._static.append(ax.text(0.995, y, name, transform=blend, ha="right", va="center",
                                        fontsize=p.small, color="#555555", style="italic", zorder=0))
        self._rmap_label = ax.text(0, 5.62, "rmap side", ha="center", va="center",
                                   fontsize=p.small, color="#555555", style="italic", zorder=0)
        self.title = _Card(0.008, 1 - 0.1 / H, "", transform=fig.transFigure)
        self.title.configure("", ("title", p.name), dict(fontsize=p.title, fontweight="bold", ha="left",
                                                          va="top", color="black"))
        self.era_text = _Card(0.992, 1 - 0.1 / H, "", transform=fig.transFigure)
        self.era_text.configure("", ("era", p.name), dict(fontsize=p.title, fontweight="bold", ha="right",
                                                           va="top", color=PALETTE["blue"]))
        self.caption = _Card(0.008, 1 - (0.14 + p.title * 1.45 / 72) / H, "", transform=fig.transFigure)
        self.caption.configure("", ("caption", p.name), dict(fontsize=p.small, ha="left", va="top",
                                                              color="#222222", linespacing=1.25))
        self.empty = _Card(0.5, 0.5, "", transform=ax.transAxes)
        self.empty.configure("", ("empty", p.name), dict(fontsize=p.title, color="#777777", ha="center",
                                                          va="center", style="italic"))
        for t in (self.title, self.era_text, self.caption):
            fig.add_artist(t)
        ax.add_artist(self.empty)
        self.kax = None
        if self.legend:
            self.kax = fig.add_axes([0.0, 0.0, 1.0, key_h])
            self.kax.axis("off")
        self.legend_entries = ()
        self._legend_drawn = None
        self._legend_artists = []
        self._legend_sets = {}
        self._bgs = {}

    def _set_legend(self, entries):
        """Show the key for ``entries`` (symbols of :data:`LEGEND`) in the
        band under the graph: a sample and a caption each, flowed into rows
        at the preset's legend font size (smaller only if they would not
        fit).  Kept as real artists, so exported files stay vector."""
        self.legend_entries = tuple(entries)
        if not self.legend or self._legend_drawn == self.legend_entries:
            return
        self._legend_drawn = self.legend_entries
        kax = self.kax
        for a in self._legend_artists:
            a.set_visible(False)
        # each set of entries keeps its artists (hidden while another shows)
        arts = self._legend_sets.get(self.legend_entries)
        if arts is not None:
            for a in arts:
                a.set_visible(True)
            self._legend_artists = arts
            return
        self._legend_artists = self._legend_sets[self.legend_entries] = arts = []
        kax.set_xlim(0, 1)
        kax.set_ylim(0, 1)
        if not entries:
            return
        arts.append(kax.axhline(0.985, color="#bbbbbb", lw=0.8))
        W = self.figure.get_figwidth() * self.figure.dpi
        H = kax.get_position().height * self.figure.get_figheight() * self.figure.dpi
        key = (self.legend_entries, round(W), self.preset.name)
        plan = _LEGEND_PLANS.get(key)
        if plan is None:
            plan = _LEGEND_PLANS[key] = self._legend_plan(entries, W, H)
        fs, items = plan
        p = self.preset
        for sym, x, sw, y in items:
            kind, variant, sample, caption = LEGEND[sym]
            if kind == "line":
                color, ls, wf, _ = EDGE_STYLES[variant]
                arts += kax.plot([x / W, (x + sw) / W], [y, y], color=color, linestyle=ls, lw=p.lw * wf * 1.3,
                                 solid_capstyle="butt")
            elif kind != "text":
                card = _Card((x + sw / 2) / W, y, "", transform=kax.transData)
                card.configure(sample, ("key", variant, kind, fs, p.name), self._legend_props(kind, variant, fs))
                arts.append(kax.add_artist(card))
            # a caption is a card too: its raster is cached, so a frame whose
            # key changes redraws its background without laying out text again
            t = _Card((x + sw + (6 if kind != "text" else 0)) / W, y, "", transform=kax.transData)
            t.caption = True
            t.configure(f"{sample} {caption}" if kind == "text" else caption, ("key caption", fs, p.name),
                        dict(ha="left", va="center", fontsize=fs, color="#222222", linespacing=1.05))
            arts.append(kax.add_artist(t))

    def _legend_props(self, kind, variant, fs):
        state = {"changed": "changed", "gone": "gone"}.get(kind, "same")
        props = card_props(variant, state, kind == "pinned", self.preset, dense=True)
        props["fontsize"] = fs * (0.9 if variant.startswith("pte") else 0.95)
        return props

    def _legend_plan(self, entries, W, H):
        """(font size, [(symbol, x, sample width, y)]): the entries flowed
        into as many rows as the band holds, at the largest font size
        (the preset's legend size at most) that fits."""
        p = self.preset
        r = self.canvas.get_renderer()
        fs = p.legend
        while True:
            row_h = fs * self.figure.dpi / 72 * 1.8
            nrows = max(1, int((H - 4) // row_h))
            measured = []
            for sym in entries:
                kind, variant, sample, caption = LEGEND[sym]
                if kind == "line":
                    sw = fs * 3.0 * self.figure.dpi / 72
                elif kind == "text":
                    sw = 0.0
                    caption = f"{sample} {caption}"
                else:
                    card = _Card(0, 0, "", transform=IdentityTransform())
                    card.configure(sample, ("key", variant, kind, fs, p.name), self._legend_props(kind, variant, fs))
                    card.figure = self.figure
                    sw = card.sprite(r)[0].shape[1] + 2          # the box with its margin
                t = Text(0, 0, caption, fontsize=fs, linespacing=1.05)
                t.figure = self.figure
                cw = t.get_window_extent(r).width
                measured.append((sym, sw, (6 if kind != "text" else 0) + cw))
            rows, x, row = [], 0.0, []
            gap, left = fs * 1.4 * self.figure.dpi / 72, fs * 0.8 * self.figure.dpi / 72
            for sym, sw, cw in measured:
                width = sw + cw
                if row and left + x + width > W - left:
                    rows.append(row)
                    row, x = [], 0.0
                row.append((sym, left + x, sw))
                x += width + gap
            rows.append(row)
            if len(rows) <= nrows or fs <= p.legend * 0.75:
                break
            fs *= 0.92
        n = len(rows)
        items = []
        for ri, row in enumerate(rows):
            y = 1 - (ri + 0.5) / max(n, nrows) if n <= nrows else 1 - (ri + 0.5) / n
            items += [(sym, x, sw, y) for sym, x, sw in row]
        return fs, items

    # -- one frame --------------------------------------------------------------------------
    def _margins(self):
        """Pixels to keep left and right of the outermost node centres: half a
        wide card, and the row names on the right."""
        p = self.preset
        card = (11 * 0.62 * p.font + 1.6 * p.font) * p.dpi / 72
        names = 12 * 0.6 * p.small * p.dpi / 72
        return card / 2 + 6, card / 2 + names + 6

    def _set_xlim(self, lo, hi):
        p = self.preset
        ax = self.ax
        self._centers = (lo, hi)
        width_px = ax.get_position().width * self.figure.get_figwidth() * p.dpi
        left, right = self._margins()
        # px per unit: as wanted, up to 1.5x more when the state is small
        # (cards keep their size, they only spread), less when it is huge
        scale = min((width_px - left - right) / max(hi - lo, 1e-9), p.unit_px * 1.5)
        spare = width_px - left - right - (hi - lo) * scale
        x0 = lo - (left + spare / 2) / scale
        ax.set_xlim(x0, x0 + width_px / scale)
        side = [x for n, (x, _) in self.layout.pos.items() if n[0] in ("anon_vma", "file")]
        self._rmap_label.set_x((min(side) + max(side)) / 2 if side else lo)
        self._rmap_label.set_visible(bool(side))
        self._dense = bool(scale < p.unit_px * 0.8)
        self._bgs = {}

    def _frame(self, g, prev, diff, title, caption, era):
        p = self.preset
        pos = self.layout.pos
        drawn, notes = {}, {}
        # nodes: gone first (faded, under the others), then the present ones
        order = []
        if diff is not None:
            order += [(n, prev.nodes[n], "gone") for n in sorted(diff.gone, key=repr) if n in pos]
        order += [(n, a, diff.state(n) if diff is not None else "same") for n, a in g.nodes(data=True)]
        used = set()
        visible = []
        vis_nodes = self._visible_nodes = []
        for n, a, state in order:
            card = self._cards.get(n)
            if card is None:
                card = self._cards[n] = _Card(0, 0, "")
                self.ax.add_artist(card)
            variant = card_variant(a)
            pinned = a["kind"] == "folio" and a["pincount"] > 0
            key = (variant, state, pinned, p.name, self._dense)
            card.configure(a["label"], key, None, lambda: card_props(variant, state, pinned, p, self._dense))
            card.set_position(pos[n])
            card.set_visible(True)
            used.add(n)
            visible.append(card)
            vis_nodes.append(n)
            drawn[n] = state
            if diff is not None and a["kind"] not in ("anon_vma", "file"):
                folio = a["kind"] == "folio"
                zero = folio and a["zero"]          # never allocated, never freed: only (un)mapped
                text = _note(diff.changed.get(n, ())) if state == "changed" else \
                    ("mapped" if zero else "new page") if state == "new" and folio and len(prev) else \
                    ("unmapped" if zero else "freed") if state == "gone" and folio else ""
                if text:
                    notes[n] = text
        notes = _merge_runs(notes, g, pos)
        for n, card in self._cards.items():
            if n not in used and card.get_visible():
                card.set_visible(False)
        self._edges(g, prev, diff)
        # change annotations, next to their node, where they cover no card,
        # no edge and no other annotation (measured in pixels on the images
        # that will be pasted); one that finds no such place is left out (the
        # thick outline and the highlighted edge still show the change)
        pool = self._note_pool
        while len(pool) < len(notes):
            t = _Card(0, 0, "")
            self.ax.add_artist(t)
            pool.append(t)
        note_props = dict(fontsize=p.small * 0.95, color=HIGHLIGHT, style="italic", fontweight="bold",
                          ha="center", va="center", zorder=4,
                          bbox=dict(boxstyle="round,pad=0.12", facecolor="white", edgecolor="none", alpha=0.9))
        for t, (n, text) in zip(pool, notes.items()):
            t.configure(text, ("note", p.name), note_props)
        placed = self._place_notes(notes, visible, pool)
        for t, (n, text, xy) in zip(pool, placed):
            t.configure(text, ("note", p.name), note_props)
            t.set_position(xy)
            t.set_visible(True)
        for t in pool[len(placed):]:
            t.set_visible(False)
        self.dropped = sorted((n for n in notes if n not in {m for m, _, _ in placed}), key=repr)
        notes = {n: text for n, text, _ in placed}
        self.title.configure(title, ("title", p.name))
        self.era_text.configure(f"era {era}" if era else "", ("era", p.name))
        width_chars = int(self.figure.get_figwidth() * 72 / (p.small * 0.6))
        lines = textwrap.wrap(caption, width_chars) if caption else []
        if len(lines) > 2:                  # say that it goes on (the stepper's text has it all)
            lines = lines[:1] + [textwrap.shorten(" ".join(lines[1:]), width_chars, placeholder=" …")]
        wrapped = "\n".join(lines)
        self.caption.configure(wrapped, ("caption", p.name))
        self.empty.configure("" if len(g) else "nothing mapped yet: step to start", ("empty", p.name))
        self.drawn, self.notes = drawn, notes
        self._set_legend(self.symbols(g, prev))
        dynamic = [self.lines] + visible + pool[:len(placed)] + [self.title, self.era_text, self.caption, self.empty]
        self._render(dynamic)

    def _place_notes(self, notes, cards, pool):
        """[(node, text, (x, y))] for the notes that find a free place.

        Tried in order: below the node's card (above it for a PTE, whose
        edges leave downwards), then to its sides and further out; a place
        is free when the note's box overlaps no card, no edge drawn this
        frame and no note placed before, and stays inside the axes."""
        if not notes:
            return []
        r = self.canvas.get_renderer()
        to_px = self.ax.transData.transform
        ab = self.ax.get_window_extent(r)
        boxes = _extents(cards, r, to_px)
        paths = [np.asarray(path, float) for path in self.paths.values()]
        if paths:
            pts = to_px(np.concatenate(paths))           # one transform for every edge
            inner = np.ones(len(pts) - 1, bool)          # point i -> i+1 within one edge
            inner[np.cumsum([len(q) for q in paths])[:-1] - 1] = False
            seg = np.hstack([pts[:-1], pts[1:]])[inner]
        else:
            seg = np.zeros((0, 4))
        pos = self.layout.pos
        card_of = dict(zip(self._visible_nodes, boxes))
        out = []
        boxes = np.array(boxes, float).reshape(-1, 4)
        order = sorted(notes.items(), key=lambda kv: (-pos[kv[0]][1], pos[kv[0]][0], repr(kv[0])))
        inv = self.ax.transData.inverted()
        seg_lo, seg_hi = np.minimum(seg[:, :2], seg[:, 2:]), np.maximum(seg[:, :2], seg[:, 2:])
        for (n, text), note in zip(order, pool):
            note.configure(text, note._skey)
            note.set_position(pos[n])
            arr, ax0, ay0 = note.sprite(r)          # the note's box around its anchor
            h, w = arr.shape[:2]
            px, py = to_px(pos[n])
            c = card_of.get(n, (px - 1, py - 1, px + 1, py + 1))
            spots = np.round(np.array(_note_spots(c, w, h, up=n[0] in ("pte", "ptes"))) - [w / 2, h / 2])
            box = None
            for part in (spots[:4], spots[4:]):     # the four next to the card first
                cand = np.hstack([part, part + [w, h]])                # (S, 4) boxes
                free = (cand[:, 0] >= ab.x0) & (cand[:, 2] <= ab.x1) & (cand[:, 1] >= ab.y0) & \
                    (cand[:, 3] <= ab.y1)
                free &= ~_overlaps(cand, boxes).any(axis=1)
                # only the segments near the spots can hit one
                near = ((seg_hi[:, 0] >= cand[:, 0].min()) & (seg_lo[:, 0] <= cand[:, 2].max()) &
                        (seg_hi[:, 1] >= cand[:, 1].min()) & (seg_lo[:, 1] <= cand[:, 3].max()))
                free &= ~_hits(cand, seg[near]).any(axis=1)
                if free.any():
                    box = cand[int(np.argmax(free))]
                    break
            if box is None:
                continue
            boxes = np.vstack([boxes, box[None]])
            # the anchor that puts the note's box exactly there
            xy = inv.transform((box[0] - ax0, box[1] - ay0))
            out.append((n, text, (float(xy[0]), float(xy[1]))))
        return out

    def _edges(self, g, prev, diff):
        p = self.preset
        pos = self.layout.pos
        items = []
        if diff is not None:
            for u, v, k in diff.gone_edges:
                if u in pos and v in pos:
                    items.append((u, v, k, prev.edges[u, v, k], "gone"))
        mapping = [e for e in g.edges(keys=True, data=True) if e[3]["kind"] in ("mapping", "page_cache")]
        hot = set()
        if self.rmap == "auto" and len(mapping) > RMAP_AUTO and diff is not None:
            hot = {n for n in g if diff.state(n) in ("new", "changed")}
        for u, v, k, a in g.edges(keys=True, data=True):
            if a["kind"] in ("mapping", "page_cache"):
                if self.rmap == "none" or (self.rmap == "auto" and len(mapping) > RMAP_AUTO
                                           and u not in hot and v not in hot):
                    continue
            state = "new" if diff is not None and (u, v, k) in diff.new_edges and len(prev) else "same"
            items.append((u, v, k, a, state))
        # parallel edges (same two nodes) fan out with distinct curvature
        pairs = {}
        for it in items:
            pairs.setdefault(frozenset((it[0], it[1])), []).append(it)
        segs, colors, widths, styles, ranks = [], [], [], [], []
        self.paths = {}
        self._edge_symbols = set()
        for group in pairs.values():
            group.sort(key=lambda it: (repr(it[2]), it[4]))
            m = len(group)
            for i, (u, v, k, a, state) in enumerate(group):
                style = edge_style(a)
                self._edge_symbols.add("line_" + style)
                if state == "gone":
                    self._edge_symbols.add("gone")
                elif state == "new" and a["kind"] in ("pte", "hold"):
                    self._edge_symbols.add("changed")
                color, ls, wf, rank = EDGE_STYLES[style]
                rad = (i - (m - 1) / 2) * 0.35 if m > 1 else 0.0
                (x0, y0), (x1, y1) = pos[u], pos[v]
                if a["kind"] in _RMAP_EDGES:
                    length = math.hypot(x1 - x0, y1 - y0) or 1.0
                    rad += min(0.12, _RMAP_CAP / length)
                end = pos[v]
                if a["kind"] == "pte" and "nr" in a:    # to a large folio: at its pages' part of the card
                    end = (end[0] + self._port(u, v, a), end[1])
                segs.append(_curve(pos[u], end, rad))
                self.paths[(u, v, k)] = segs[-1]
                lw = p.lw * wf * (0.8 if self._dense else 1.0)
                rgba = to_rgba(color)
                if state == "gone":
                    rgba, rank = (rgba[0], rgba[1], rgba[2], 0.25), -1
                elif state == "new" and a["kind"] in ("pte", "hold"):
                    rgba, lw, rank = to_rgba(HIGHLIGHT), lw * 1.5, 4
                colors.append(rgba)
                widths.append(lw)
                styles.append(ls)
                ranks.append(rank)
        order = sorted(range(len(segs)), key=lambda i: ranks[i])
        self.lines.set_segments([segs[i] for i in order])
        self.lines.set_color([colors[i] for i in order])
        # one style first: matplotlib broadcasts widths against the styles
        # still set (the last frame's, another count: lcm(n, m) dash patterns)
        self.lines.set_linestyle("solid")
        self.lines.set_linewidth([widths[i] for i in order])
        self.lines.set_linestyle([styles[i] for i in order])
        self.edge_count = len(segs)

    def _port(self, u, v, a):
        """Where the edge ``u`` -> ``v`` ends on a large folio's card
        (:meth:`Layout.port`), kept inside the card as drawn (a small state
        is spread wider than the layout's units, its cards are not)."""
        dx = self.layout.port(u, v, a)
        p = self.preset
        x0, x1 = self.ax.get_xlim()
        px_per_unit = self.ax.get_position().width * self.figure.get_figwidth() * p.dpi / (x1 - x0)
        half = 0.45 * self.layout.width[v] * p.unit_px / px_per_unit
        return max(-half, min(half, dx))

    def _render(self, dynamic):
        canvas = self.canvas
        key = (canvas.get_width_height(physical=True), self.figure.dpi, self.ax.get_xlim(), self.legend_entries)
        bg = self._bgs.get(key)
        if bg is None:
            shown = [a for a in dynamic if a.get_visible()]
            hidden = [c for c in list(self._cards.values()) + self._note_pool if c.get_visible()]
            for a in shown + hidden:
                a.set_visible(False)
            canvas.draw()
            if len(self._bgs) >= _BG_CACHE:
                self._bgs.pop(next(iter(self._bgs)))
            bg = self._bgs[key] = canvas.copy_from_bbox(self.figure.bbox)
            for a in shown + hidden:
                a.set_visible(True)
        canvas.restore_region(bg)
        r = canvas.get_renderer()
        for a in dynamic:
            if a.get_visible():
                a.draw(r)


def _note(changes):
    """Change descriptions on at most two short lines: counters first, then flags."""
    counters = [c.replace(" ", "") for c in changes if c[:2] in ("r ", "m ", "p ")]
    rest = [c for c in changes if c[:2] not in ("r ", "m ", "p ")]
    flags = " · ".join(rest)
    if len(flags) > 10:
        flags = "\n".join(rest)
    return "\n".join(x for x in (" ".join(counters), flags) if x)


def _merge_runs(notes, g, pos):
    """One note for a run of at least three neighbouring PTE nodes of one
    process with the same change (fork write-protects every PTE: "16 PTEs:
    W→RO" once at the run's middle, instead of 16 notes with no room)."""
    rows = {}
    for n, a in g.nodes(data=True):
        if a["kind"] == "pte":
            rows.setdefault(a["pid"], []).append(n)
    out = dict(notes)
    for pid, ptes in rows.items():
        ptes.sort(key=lambda n: pos[n][0])
        run = []
        for n in ptes + [None]:
            if n is not None and n in notes and (not run or notes[run[0]] == notes[n]):
                run.append(n)
                continue
            if len(run) >= 3:
                text = notes[run[0]]
                for m in run:
                    del out[m]
                out[run[len(run) // 2]] = f"{len(run)} PTEs:" + ("\n" if "\n" in text else " ") + text
            run = [n] if n is not None and n in notes else []
    return out


def _note_spots(card, w, h, up=False):
    """Centres (pixels) to try for a w x h note next to a card box, nearest
    first: under it (over it when ``up``), the other side, its sides, then
    further out and shifted sideways."""
    x0, y0, x1, y1 = card
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    below, above = y0 - 1 - h / 2, y1 + 1 + h / 2
    vert = (above, below) if up else (below, above)
    out = [(mx, vert[0]), (mx, vert[1]), (x1 + 1 + w / 2, my), (x0 - 1 - w / 2, my)]
    for k in range(1, 9):
        for vy in vert:
            dy = k * h * 0.6 * (1 if vy > my else -1)
            for dx in (0, w * 0.35 * k, -w * 0.35 * k):
                out.append((mx + dx, vy + dy))
        for side in (1, -1):
            out.append((mx + side * ((x1 - x0) / 2 + 1 + w / 2), my + k * h * 0.6 * (1 if up else -1)))
            out.append((mx + side * ((x1 - x0) / 2 + 1 + w / 2), my - k * h * 0.6 * (1 if up else -1)))
    return out


def _extents(cards, renderer, to_px):
    """Pixel boxes of the images ``cards`` (all in the same axes) paste."""
    if not cards:
        return []
    xy = to_px(np.array([c.get_unitless_position() for c in cards], float))
    out = []
    for c, (x, y) in zip(cards, xy):
        arr, dx, dy = c.sprite(renderer)
        x0, y0 = int(round(x)) + dx, int(round(y)) + dy
        out.append((x0, y0, x0 + arr.shape[1], y0 + arr.shape[0]))
    return out


def _overlaps(a, b):
    """(len(a), len(b)) booleans: does pixel box a[i] overlap box b[j]?
    (Boxes are rows of x0, y0, x1, y1.)"""
    return ((a[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < a[:, None, 2]) &
            (a[:, None, 1] < b[None, :, 3]) & (b[None, :, 1] < a[:, None, 3]))


def _hits(boxes, seg):
    """(len(boxes), len(seg)) booleans: does segment j (a row of x0, y0,
    x1, y1, in pixels) enter box i?  (Liang-Barsky clipping.)"""
    if not len(seg) or not len(boxes):
        return np.zeros((len(boxes), len(seg)), bool)
    bx0, by0, bx1, by1 = (boxes[:, k][:, None] for k in range(4))
    sx, sy = seg[None, :, 0], seg[None, :, 1]
    dx, dy = seg[None, :, 2] - sx, seg[None, :, 3] - sy
    shape = (len(boxes), len(seg))
    lo, hi = np.zeros(shape), np.ones(shape)
    ok = np.ones(shape, bool)
    for p, q in ((-dx, sx - bx0), (dx, bx1 - sx), (-dy, sy - by0), (dy, by1 - sy)):
        p, q = np.broadcast_to(p, shape), np.broadcast_to(q, shape)
        par = np.abs(p) < 1e-12
        ok &= ~(par & (q < 0))
        t = q / np.where(par, 1.0, p)
        lo = np.where(~par & (p < 0), np.maximum(lo, t), lo)
        hi = np.where(~par & (p > 0), np.minimum(hi, t), hi)
    return ok & (lo <= hi)


def _curve(a, b, rad, n=12):
    """Points of the edge from ``a`` to ``b``: straight, or a quadratic
    Bezier bowed by ``rad`` (fraction of its length) to the left."""
    (x0, y0), (x1, y1) = a, b
    if not rad:
        return [(x0, y0), (x1, y1)]
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    dx, dy = x1 - x0, y1 - y0
    cx, cy = mx - dy * rad, my + dx * rad
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, c, p1 = np.array([x0, y0]), np.array([cx, cy]), np.array([x1, y1])
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t ** 2 * p1


class _Card(Text):
    """A Text that pastes a cached raster of itself on Agg canvases.

    Its look is fixed by a hashable style key passed to :meth:`configure`;
    (text, key, dpi) -> image is cached for the whole process.  On vector
    backends it draws as a plain Text.
    """

    def __init__(self, x, y, text, **kw):
        super().__init__(x, y, text, **kw)
        self._skey = None

    def configure(self, text, skey, props=None, make_props=None):
        """Set the text and the style (``props`` are applied when ``skey`` changes)."""
        if skey != self._skey:
            props = props if props is not None else make_props() if make_props else None
            if props is not None:
                props = dict(props)
                bbox = props.pop("bbox", None)
                self.set_bbox(dict(bbox) if bbox else None)
                self.update(props)
            self._skey = skey
        if text != self.get_text():
            self.set_text(text)

    def draw(self, renderer):
        if not self.get_visible() or not self.get_text():
            return
        if self._skey is None or type(renderer) is not RendererAgg:
            return super().draw(renderer)
        arr, dx, dy = self.sprite(renderer)
        x, y = self.get_transform().transform(self.get_unitless_position())
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        gc = renderer.new_gc()
        renderer.draw_image(gc, int(round(x)) + dx, int(round(y)) + dy, arr)
        gc.restore()
        self.stale = False

    def sprite(self, renderer):
        """(RGBA array, dx, dy): the cached image this card pastes and its
        offset from the card's anchor, in pixels."""
        key = (self.get_text(), self._skey, renderer.dpi)
        sprite = _SPRITES.get(key)
        if sprite is None:
            if len(_SPRITES) > _SPRITE_LIMIT:
                _SPRITES.clear()
            sprite = _SPRITES[key] = self._sprite(renderer)
        return sprite

    def extent(self, renderer):
        """The pixel box (x0, y0, x1, y1) of the image this card pastes
        (text, box and a few pixels of margin), at its current position."""
        arr, dx, dy = self.sprite(renderer)
        x, y = self.get_transform().transform(self.get_unitless_position())
        x0, y0 = int(round(x)) + dx, int(round(y)) + dy
        return (x0, y0, x0 + arr.shape[1], y0 + arr.shape[0])

    def _sprite(self, renderer):
        visible = self.get_visible()
        self.set_visible(True)          # a hidden Text measures as an empty box
        try:
            return self._render_sprite(renderer)
        finally:
            self.set_visible(visible)

    def _render_sprite(self, renderer):
        # measured and drawn on one scratch canvas per dpi, kept for the
        # process: matplotlib caches text metrics per renderer, so the
        # layout of the draw below reuses the measurement's
        scratch = _scratch(renderer.dpi)
        ext = self.get_window_extent(scratch)
        boxes = [ext]
        patch = self.get_bbox_patch()
        if patch is not None:
            self.update_bbox_position_size(scratch)
            boxes.append(patch.get_window_extent(scratch))
        bb = Bbox.union(boxes)
        pad = 4 + int(math.ceil(renderer.points_to_pixels(patch.get_linewidth()) if patch else 0))
        x, y = self.get_transform().transform(self.get_unitless_position())
        xr, yr = int(round(x)), int(round(y))
        ox, oy = int(math.floor(bb.x0)) - pad, int(math.floor(bb.y0)) - pad
        w, h = int(math.ceil(bb.x1)) - ox + pad, int(math.ceil(bb.y1)) - oy + pad
        if w > scratch.width or h > scratch.height:
            scratch = _scratch(renderer.dpi, w, h)
        scratch.clear()
        tr, xy, clip = self.get_transform(), self.get_position(), self.get_clip_on()
        try:
            self.set_transform(IdentityTransform())
            self.set_position((xr - ox, yr - oy))
            self.set_clip_on(False)       # the axes clip box is in the big canvas' pixels
            Text.draw(self, scratch)
        finally:
            self.set_transform(tr)
            self.set_position(xy)
            self.set_clip_on(clip)
        H = scratch.height
        arr = np.asarray(scratch.buffer_rgba())[H - h:H, :w][::-1].copy()
        return arr, ox - xr, oy - yr


_SCRATCH = {}


def _scratch(dpi, w=0, h=0):
    """The scratch canvas card images are drawn on at ``dpi``, at least w x h."""
    r = _SCRATCH.get(dpi)
    if r is None or w > r.width or h > r.height:
        r = _SCRATCH[dpi] = RendererAgg(max(w, 1600, r.width if r else 0), max(h, 400, r.height if r else 0), dpi)
    return r
