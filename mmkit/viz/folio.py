"""A large folio drawn as one node with its subpages visible.

A THP has 512 pages, an mTHP 4 to 256.  The rmap drawing shows a small
folio as one card; a large folio is one card too, with a strip of its pages
inside it, and under it one *lane* per process that maps part of it,
aligned page by page with the strip:

* the folio strip: each page's own mapcount (``m``, what /proc/kpagecount
  shows: folio_precise_page_mapcount()) by shade, and PageAnonExclusive
  (``AE``) by a black bar along the cell's top, as the kernel stores it
  (a PMD-mapped THP keeps AE on the head page only);
* a process lane: how that process maps each page -- through its PMD (one
  bar over the whole folio), a PTE, its own copy (another page at that
  address), or not at all; black for writable, white dashed for read-only.

Because the lanes sit under the pages they map, no mapping line is drawn
and none can cross another; lanes keep their order (the order given) from
frame to frame.  A run of pages in the same state in the strip and in
every lane is one cell, labelled with its first page; beyond ``max_cells``
runs the pages are grouped into ``max_cells`` equal groups, a group with
mixed states hatched and labelled with how many of its pages are mapped.
A run is at least ``min_frac`` of the width, so one copied page of 512 stays
visible.

The data comes from ``k.page()`` only (any backend: the model or the live
kernel), plus, on the model, the per-page state of pages no shown process
maps.

Examples
--------
>>> from mmkit import Kernel
>>> k = Kernel()
>>> p = k.spawn("P"); a = p.mmap(512); p.madvise(a, 512, "hugepage"); p.write(a, b"x")
>>> c = p.fork("C"); c.write(a + 4096, b"y")
>>> v = folio_view(k, {"P": (p, a), "C": (c, a)})
>>> v.nr, v.lanes["P"][0], v.lanes["C"][1], v.lanes["C"][0]
(512, 'pmd_ro', 'copy', 'pte_ro')
>>> [(r.start, r.stop) for r in v.runs()][:3]
[(0, 1), (1, 2), (2, 512)]
"""

from dataclasses import dataclass, field

from ..errors import InvalidArgument
from .style import PALETTE


__all__ = ["FolioView", "Run", "folio_view", "draw_folio", "draw_strip", "strip_runs", "run_text", "large_node_attrs", "cell_of",
           "LANE_STATES", "GROUP_CELLS", "mm_slots"]

PAGE = 4096
#: how a process maps one page of the folio
LANE_STATES = ("pmd_w", "pmd_ro", "pte_w", "pte_ro", "copy", "none")
#: most cells a strip shows before it groups pages
GROUP_CELLS = 32
_SHADE = {0: "#ffffff", 1: "#d5ebf8", 2: "#56B4E9", 3: "#0072B2"}
_LANE_FILL = {"pmd_w": PALETTE["black"], "pmd_ro": "#ffffff", "pte_w": PALETTE["black"], "pte_ro": "#ffffff",
              "copy": "#e4e4e4", "none": None}


def _shade(m):
    return _SHADE[min(m, 3)]


@dataclass
class Run:
    """Pages ``start``..``stop-1``: one cell of the strip.  ``mixed`` when
    grouped pages differ; ``mapped`` counts the pages some process maps."""

    start: int
    stop: int
    page: tuple                  # (mapcount, AE) of the strip
    lanes: tuple                 # lane state per lane
    mixed: bool = False
    mapped: int = 0

    @property
    def n(self):
        return self.stop - self.start


@dataclass
class FolioView:
    """The state of one large folio as the drawing shows it.

    Attributes
    ----------
    head_pfn, order, nr : int
    mapcount : list of int
        Each page's mapcount (kpagecount), ``nr`` entries.
    exclusive : list of bool
        Each page's PageAnonExclusive.
    lanes : dict
        process label -> list of ``nr`` lane states (:data:`LANE_STATES`).
    counters : dict
        The folio's own counters (refcount, large_mapcount, entire_mapcount,
        nr_pages_mapped, folio_pincount, maybe_mapped_shared, mm_ids).
    """

    head_pfn: int
    order: int
    nr: int
    mapcount: list
    exclusive: list
    lanes: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)

    def column(self, i):
        return (self.mapcount[i], self.exclusive[i]), tuple(ln[i] for ln in self.lanes.values())

    def runs(self, max_cells=GROUP_CELLS):
        """The strip's cells: runs of equal columns, or ``max_cells`` groups."""
        out = []
        for i in range(self.nr):
            page, lanes = self.column(i)
            if out and out[-1].page == page and out[-1].lanes == lanes:
                out[-1].stop = i + 1
            else:
                out.append(Run(i, i + 1, page, lanes))
        for r in out:
            r.mapped = r.n if r.page[0] else 0
        if len(out) <= max_cells:
            return out
        size = max(1, self.nr // max_cells)
        grouped = []
        for s in range(0, self.nr, size):
            cols = [self.column(i) for i in range(s, min(self.nr, s + size))]
            pages = {c[0] for c in cols}
            lanes = [{c[1][j] for c in cols} for j in range(len(self.lanes))]
            top = max(pages, key=lambda p: sum(1 for c in cols if c[0] == p))
            lane = tuple(min(ls, key=LANE_STATES.index) if len(ls) == 1 else "mixed" for ls in lanes)
            grouped.append(Run(s, s + len(cols), top, lane, mixed=len(pages) > 1 or "mixed" in lane,
                               mapped=sum(1 for c in cols if c[0][0])))
        return grouped


def _model_folio(proc, addr):
    """The model's LargeFolio mapped at ``addr`` (None on a live kernel)."""
    mm = getattr(proc, "mm", None)
    if mm is None or not hasattr(mm, "pte"):
        return None
    e = mm.pte(addr)
    page = getattr(e, "folio", None) if e is not None else None
    return getattr(page, "folio", None) if getattr(page, "large", False) else None


def folio_view(k, procs, at=None):
    """The :class:`FolioView` of the large folio that ``procs[at]`` maps.

    Parameters
    ----------
    k : Kernel or LiveKernel
    procs : dict
        label -> ``(process, address)``; the address is any page of the
        folio (the same virtual range in every process, as after fork).
        A process that has exited gets an empty lane.
    at : str, optional
        The label whose page names the folio (default: the first).

    Raises
    ------
    InvalidArgument
        If that page is not part of a large folio.
    """
    if not procs:
        raise InvalidArgument("folio_view() needs at least one (process, address)")
    at = at if at is not None else next(iter(procs))
    proc, addr = procs[at]
    info = k.page(proc, addr)
    if not info.present or info.nr_pages <= 1:
        raise InvalidArgument(f"{at}'s page at {addr:#x} is not part of a large folio")
    nr = info.nr_pages
    idx = info.pfn % nr                       # the buddy allocator aligns a folio's pfns to its size
    head = info.pfn - idx
    start = addr - idx * PAGE                 # the folio's first page, at the same address in every process
    lanes = {}
    seen = [None] * nr
    for label, (p, _) in procs.items():
        lane = []
        alive = getattr(p, "alive", True)
        for i in range(nr):
            if not alive:
                lane.append("none")
                continue
            pi = k.page(p, start + i * PAGE)
            if not pi.present:
                lane.append("none")
            elif pi.pfn == head + i:
                kind = "pmd" if pi.pmd_mapped else "pte"
                lane.append(f"{kind}_{'w' if pi.writable else 'ro'}")
                if seen[i] is None:
                    seen[i] = pi
            else:
                lane.append("copy")
        lanes[label] = lane
    folio = _model_folio(proc, addr)
    if folio is not None:
        mapcount = [pg.mapcount for pg in folio.pages]
        excl = [bool(pg.anon_exclusive) for pg in folio.pages]
    else:
        mapcount = [s.mapcount if s is not None else 0 for s in seen]
        excl = [bool(s.exclusive) if s is not None else False for s in seen]
    counters = dict(refcount=info.refcount, large_mapcount=info.large_mapcount,
                    entire_mapcount=info.entire_mapcount, nr_pages_mapped=info.nr_pages_mapped,
                    folio_pincount=info.folio_pincount, maybe_mapped_shared=info.maybe_mapped_shared,
                    mm_ids=info.mm_ids,
                    mm_names={getattr(getattr(p, "mm", None), "mm_id", None): label
                              for label, (p, _) in procs.items() if getattr(p, "alive", True)})
    return FolioView(head, info.order, nr, mapcount, excl, lanes, counters)


def mm_slots(ids, names=None):
    """The folio's two MM-ID slots in words: ``"slot 0: mm 1 (P), slot 1:
    empty"`` (id 0, MM_ID_DUMMY, is a free slot); ``names`` maps an mm id
    to a process label."""
    if not ids:
        return "none (no MM-ID tracking before v6.15)"
    names = names or {}
    out = []
    for i, m in enumerate(ids):
        who = f" ({names[m]})" if m in names else ""
        out.append(f"slot {i}: " + (f"mm {m}{who}" if m else "empty"))
    return ", ".join(out)


def _widths(runs, nr, min_frac):
    raw = [max(r.n / nr, min_frac) for r in runs]
    total = sum(raw)
    return [w / total for w in raw]


def draw_strip(ax, x, y, w, h, runs, nr, min_frac=0.04, font=8):
    """Draw the folio strip (one cell per run) into ``ax`` in the box
    (x, y, w, h), data coordinates; returns the cells' x extents.  This is
    the part an rmap-graph card of a large folio embeds."""
    from matplotlib.patches import Rectangle
    xs = []
    cx = x
    for r, frac in zip(runs, _widths(runs, nr, min_frac)):
        cw = w * frac
        m, ae = r.page
        ax.add_patch(Rectangle((cx, y), cw, h, facecolor=_shade(m), edgecolor="#333333", linewidth=0.6,
                               hatch="////" if r.mixed else None))
        if ae:
            ax.add_patch(Rectangle((cx, y + h * 0.82), cw, h * 0.18, facecolor=PALETTE["black"], linewidth=0))
        label = f"m{m}" + (" AE" if ae else "")
        if r.mixed:
            label = f"{r.mapped}/{r.n}\nmapped"
        if cw <= 0.07 * w and not r.mixed:
            label = label.replace(" ", "\n")       # "m1\nAE" fits a narrow cell
        if cw > 0.07 * w or cw > 0.03 * w and max(len(x) for x in label.split("\n")) <= 3:
            ax.text(cx + cw / 2, y + h * 0.42, label, ha="center", va="center", fontsize=font,
                    color="white" if m >= 2 and not r.mixed else "black", linespacing=1.0)
        xs.append((cx, cw))
        cx += cw
    return xs


def draw_folio(view, title="", max_cells=GROUP_CELLS, min_frac=0.04, preset="compact", ax=None):
    """Draw ``view`` (a :class:`FolioView`): the folio card with its page
    strip, one lane per process under it, the folio counters in the card's
    header and the key under the drawing.  Returns the matplotlib Figure.

    ``preset`` is ``"compact"`` (a notebook cell) or ``"lecture"`` (16:9,
    larger type)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch, Rectangle
    from .. import notation
    big = preset == "lecture"
    font = 11 if big else 8
    runs = view.runs(max_cells)
    lanes = list(view.lanes)
    nl = len(lanes)
    if ax is None:
        fig = Figure(figsize=(13.3, 2.6 + 0.55 * nl) if big else (10, 2.2 + 0.45 * nl), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    ax.set_axis_off()
    X0, W = 0.16, 0.82
    strip_y, strip_h = nl * 1.0 + 0.9, 0.9
    # the card around the strip: one node, square corners (anon)
    top = 0.35 if view.counters.get("maybe_mapped_shared") is not None else 0.0   # a third line: MM-ID slots
    ax.add_patch(FancyBboxPatch((X0 - 0.01, strip_y - 0.45), W + 0.02, strip_h + 1.45 + top,
                                boxstyle="square,pad=0", facecolor="#f6f8fb", edgecolor=PALETTE["black"],
                                linewidth=1.4))
    c = view.counters
    size = view.nr * 4
    size_s = f"{size // 1024} MiB" if size >= 1024 else f"{size} KiB"
    head = (f"folio pfn {view.head_pfn}, order {view.order}: {view.nr} pages, {size_s}\n"
            f"r{c.get('refcount')}  large_mapcount {c.get('large_mapcount')}  entire_mapcount {c.get('entire_mapcount')}"
            f"  nr_pages_mapped {'-' if c.get('nr_pages_mapped') is None else c.get('nr_pages_mapped')}"
            f"  _pincount {c.get('folio_pincount')}")
    if c.get("maybe_mapped_shared") is not None:
        head += (f"  maybe shared: {'yes' if c['maybe_mapped_shared'] else 'no'}\n"
                 f"MM-ID slots: {mm_slots(c.get('mm_ids'), c.get('mm_names'))}")
    ax.text(X0, strip_y + strip_h + 0.5 + top / 2, head, ha="left", va="center", fontsize=font, linespacing=1.5)
    cells = draw_strip(ax, X0, strip_y, W, strip_h, runs, view.nr, min_frac, font)
    # page numbers at run starts (and the last page), under the strip
    last = -1.0
    for r, (cx, cw) in zip(runs, cells):
        if cx - last > 0.022:
            ax.text(cx, strip_y - 0.12, str(r.start), ha="left", va="top", fontsize=font - 1, color="#444444")
            last = cx
    ax.text(X0 - 0.015, strip_y + strip_h / 2, "pages", ha="right", va="center", fontsize=font)
    # the lanes
    for j, label in enumerate(lanes):
        ly = (nl - 1 - j) * 1.0 + 0.15
        ax.text(X0 - 0.015, ly + 0.3, label, ha="right", va="center", fontsize=font + 1, fontweight="bold")
        states = [r.lanes[j] for r in runs]
        if states and len(set(states)) == 1 and states[0] in ("pmd_w", "pmd_ro"):
            w = states[0] == "pmd_w"
            ax.add_patch(Rectangle((X0, ly), W, 0.6, facecolor=PALETTE["black"] if w else "#ffffff",
                                   edgecolor=PALETTE["black"], linewidth=1.4, linestyle="-" if w else (0, (4, 2))))
            ax.text(X0 + W / 2, ly + 0.3, f"one {'writable' if w else 'read-only'} PMD maps the whole folio",
                    ha="center", va="center", fontsize=font, color="white" if w else "black")
            continue
        for s, (cx, cw) in zip(states, cells):
            if s == "none":
                continue
            fill = _LANE_FILL.get(s, "#bbbbbb")
            gap = min(cw * 0.04, 0.002)     # a hairline between cells: a wide run is not drawn inset
            ax.add_patch(Rectangle((cx + gap, ly), cw - 2 * gap, 0.6, facecolor=fill or "#ffffff",
                                   edgecolor=PALETTE["black"], linewidth=0.8,
                                   hatch="xx" if s == "copy" else ("////" if s == "mixed" else None),
                                   linestyle=(0, (3, 2)) if s in ("pte_ro", "pmd_ro") else "-"))
            word = {"pmd_w": "PMD W", "pmd_ro": "PMD RO", "pte_w": "W", "pte_ro": "RO", "copy": "copy",
                    "mixed": "mixed"}[s]
            if cw > (0.045 if len(word) > 2 else 0.03) * W:
                ax.text(cx + cw / 2, ly + 0.3, word, ha="center", va="center", fontsize=font - 1,
                        color="white" if s in ("pmd_w", "pte_w") else "black",
                        bbox=dict(facecolor="white", edgecolor="none", pad=0.5) if s == "copy" else None)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.75, strip_y + strip_h + 1.05 + top)
    key = notation.key_for(["m", "AE", "W", "RO"])
    ax.text(0.0, -0.45, key + "; black bar on a page: AE; lanes: black = mapped writable (PMD or PTE), white "
            "dashed = read-only (PMD or PTE), crossed = the process maps its own copy there, empty = not mapped"
            + ("; hatched cell: pages grouped, states mixed" if any(r.mixed for r in runs) else ""),
            fontsize=font - 1.5, ha="left", va="center", wrap=True)
    if title:
        ax.set_title(title, fontsize=font + 2, loc="left")
    from .export import displayable      # (imported here: export imports view, which imports this module)
    return displayable(fig)              # a notebook shows it without pyplot's inline backend


# -- the hook for the rmap graph (mmkit.viz.graph / view) -----------------------------------------
def strip_runs(folio, max_cells=GROUP_CELLS):
    """The strip's cells for a model LargeFolio: runs of pages with the same
    (mapcount, AE), grouped beyond ``max_cells`` as :meth:`FolioView.runs`."""
    view = FolioView(folio.pfn, folio.order, folio.nr, [pg.mapcount for pg in folio.pages],
                     [bool(pg.anon_exclusive) for pg in folio.pages])
    return view.runs(max_cells)


def large_node_attrs(folio):
    """Node attributes for one large folio in :func:`mmkit.viz.rmap_graph`:
    the small-folio card's attributes (so styles and the key apply) plus
    ``large``, ``order``, ``nr`` and the strip's ``runs``.  A PTE edge to
    page ``i`` of the folio should carry ``page=i``, so that the view can end
    it at that page's cell (:func:`cell_of`)."""
    size = folio.nr * 4
    size_s = f"{size // 1024} MiB" if size >= 1024 else f"{size} KiB"
    runs = strip_runs(folio)
    label = (f"folio pfn {folio.pfn}, {size_s} ({folio.nr} pages)\n"
             f"r{folio.refcount} p{folio.pincount} large {folio.large_mapcount} entire {folio.entire_mapcount}\n"
             + run_text(runs))
    return dict(kind="folio", group=False, large=True, pfn=folio.pfn, pfns=(folio.pfn,), count=1,
                order=folio.order, nr=folio.nr, runs=runs, refcount=folio.refcount,
                mapcount=folio.large_mapcount, pincount=folio.pincount, anon=folio.anon,
                exclusive=any(pg.anon_exclusive for pg in folio.pages), pinned=folio.pincount > 0,
                maybe_pinned=folio.pincount > 0, zero=False, in_page_cache=False, orphan=False,
                dirty=folio.dirty, index=folio.index, page=0, label=label)


def run_text(runs, most=4):
    """The strip in words, for a card: ``"0–2 m2 · 3 m1 AE · 4–511 m2"``
    (the first ``most`` - 1 runs and a count of the rest when there are more)."""
    def one(r):
        where = f"{r.start}" if r.n == 1 else f"{r.start}–{r.stop - 1}"
        if r.mixed:
            return f"{where} mixed"
        m, ae = r.page
        return f"{where} m{m}" + (" AE" if ae else "")
    if len(runs) <= most:
        return " · ".join(one(r) for r in runs)
    return " · ".join(one(r) for r in runs[:most - 1]) + f" · … {len(runs) - most + 1} more runs"


def cell_of(runs, page, x, w, nr, min_frac=0.04):
    """The x centre, inside a strip drawn at (x, w) by :func:`draw_strip`, of
    the cell holding ``page`` (where an edge to that page should end)."""
    cx = x
    for r, frac in zip(runs, _widths(runs, nr, min_frac)):
        if r.start <= page < r.stop:
            return cx + w * frac / 2
        cx += w * frac
    raise InvalidArgument(f"page {page} is not in the strip of {nr} pages")
