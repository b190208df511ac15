"""A layered layout that never moves a node once placed.

Rows, top to bottom: processes, VMAs, page-table entries, folios (two
staggered sub-rows so that wide cards fit), holders (pins, pipes).  The
reverse-mapping side (anon_vmas, then files) is a column band to the *left*
of the processes, so it never has to move when processes are added on the
right.

Each process gets a block of page slots: page ``i`` of a VMA sits in slot
``i`` of the range the VMA got when first seen, so a PTE keeps its place
when its VMA is split, and a forked child's block mirrors its parent's.
Very large VMAs are squeezed into :data:`CAP` slots, except that every PTE
node of the run (one PTE, or a range of them: a PMD, "507x RO") keeps a
span as wide as its card, in address order: the two single PTEs of pages 3
and 4 of a THP never share a spot.  A PTE edge to a large folio ends at its
pages' part of the card (:meth:`Layout.port`).  Folios and holders
are placed knowing the whole run (:meth:`Layout.plan`): near the PTEs that
ever map them, and moved until, summed over every frame of the run, PTE and
holding edges cross as little as possible and no edge runs under a card it
does not touch (a crossing that remains is one no placement avoids, such as
two pages each mapped by a parent and its child in interleaved order).
Positions depend only on the sequence of graphs fed in, never on timing or
dict order, and a node keeps its position for the life of the
:class:`Layout`: feed the steps of a run in order (:meth:`Layout.plan`) and
every frame shares one coordinate frame.

Examples
--------
>>> from mmkit import Kernel
>>> from mmkit.viz import rmap_graph, Layout
>>> k = Kernel()
>>> p = k.spawn("parent")
>>> a = p.mmap(1)
>>> p.write(a, b"x")
>>> lay = Layout("compact")
>>> lay.update(rmap_graph(k))
>>> before = lay.pos[("pte", p.pid, a)]
>>> c = p.fork("child")
>>> lay.update(rmap_graph(k))
>>> lay.pos[("pte", p.pid, a)] == before, lay.pos[("pte", c.pid, a)][0] > before[0]
(True, True)
"""

import numpy as np

from ..pageinfo import PAGE_SIZE
from .style import preset as _preset

__all__ = ["Layout", "ROWS", "CAP"]

#: y of each row (layout units).
ROWS = {"task": 5.25, "vma": 4.3, "pte": 3.35, "folio": 2.3, "folio2": 1.3, "holder": 0.3}
#: At most this many page slots per VMA; bigger VMAs are squeezed (to
#: :data:`CAP_GROUPED` when the graph groups pages: few nodes per VMA then).
CAP = 64
CAP_GROUPED = 12
_SIDE_Y = (4.8, 4.05, 3.3, 2.55, 1.8, 1.05, 0.3)
#: Card widths in characters, per kind (the widest label expected).
_CHARS = {"task": 8.5, "vma": 10.5, "pte": 2.4, "folio": 9, "holder": 7.5, "anon_vma": 10, "file": 8}
_GAP = 0.35          # between cards in a row
_ROW_GAP = {"folio": 0.8}   # the upper folio row leaves room for edges to the lower one
_CROSS = 0.15        # an edge passes this far from a card it does not touch
_BLOCK_GAP = 1.4     # between processes
_RANGE_GAP = 0.6     # between the VMAs of one process
_MIN_X = -0.5        # main rows stay right of this; the rmap band is left of it
#: Costs of a folio or holder position when untangling: for two edges that
#: cross, for an edge that runs under a card it does not touch (both for
#: the whole run, down to half that when only one frame shows them), per layout unit away from the mean of its neighbours, for
#: the lower folio row, and per layout unit beyond the process blocks.
_W_CROSS, _W_UNDER, _W_DIST, _W_ROW, _W_WIDEN = 1000.0, 1000.0, 40.0, 20.0, 300.0
_UNTANGLE_PASSES = 6
_UNTANGLE_MAX = 150  # more movable nodes than this: keep the greedy places
_CANDIDATES = 40     # places tried per row, nearest the anchor first
_PORT = 0.8          # PTE edges to a large folio end within this middle part of its card
_RESTART_MAX = 12    # with a crossing left, retry each folio first when at most this many


class Layout:
    """Persistent positions for the nodes of :func:`~mmkit.viz.rmap_graph` graphs.

    Parameters
    ----------
    preset : str or Preset
        Card widths depend on the font size of the preset.

    Attributes
    ----------
    pos : dict
        node -> (x, y); never changed once set.
    width : dict
        node -> card width in layout units.
    """

    def __init__(self, preset="compact"):
        self.preset = _preset(preset)
        self.pos = {}
        self.width = {}
        self._rows = {r: [] for r in ROWS}      # row -> [(left, right)]
        self._ranges = {}                       # pid -> [(start, end, x0, slots, used, segments)]
        self._side = []                         # side nodes in order of appearance
        self._side_w = max(self._w("anon_vma"), self._w("file"))
        self._cap = CAP
        self._pte_spans = {}                    # pid -> {(first page, end, card width)} of PTE nodes
        self._grouped_run = False               # some frame of the planned run is grouped

    # -- public ---------------------------------------------------------------
    def plan(self, graphs):
        """Place the nodes of every graph of a run, in order, then move the
        folios and holders of the run so that, over all its frames, mapping
        and holding edges cross as little as possible; returns self."""
        graphs = list(graphs)
        # a VMA gets its slots when first seen: squeeze it as a grouped
        # frame of the run will need (an mmap seen before its THP is mapped)
        self._grouped_run = any(g.graph.get("grouped") for g in graphs)
        for g in graphs:
            self._note_ptes(g)
        new = []
        for g in graphs:
            new += self._update(g)
        self._untangle(graphs, new)
        return self

    def update(self, g):
        """Give a position to every node of ``g`` that has none yet (folios
        and holders where their edges in ``g`` cross least)."""
        self._note_ptes(g)
        new = self._update(g)
        if new:
            self._untangle([g], new)

    def _note_ptes(self, g):
        """Remember the address span and card width of every PTE node of
        ``g``, so that a squeezed VMA gives each one its own place
        (:meth:`_segments`)."""
        for n, a in g.nodes(data=True):
            if a["kind"] == "pte" and n not in self.pos:
                end = a.get("last_addr", a["addr"]) + PAGE_SIZE
                self._pte_spans.setdefault(a["pid"], set()).add((a["addr"], end, self._w("pte", a["label"])))

    def _update(self, g):
        new = [n for n in g if n not in self.pos]
        if not new:
            return new
        self._cap = CAP_GROUPED if g.graph.get("grouped") or self._grouped_run else CAP
        by_kind = {}
        for n in new:
            by_kind.setdefault(g.nodes[n]["kind"], []).append(n)
        for n in sorted(by_kind.get("task", ()), key=_key):
            self._place_task(g, n)
        for n in sorted(by_kind.get("vma", ()), key=lambda n: (g.nodes[n]["pid"], g.nodes[n]["start"])):
            self._place_vma(g, n)
        for n in sorted(by_kind.get("pte", ()), key=_key):
            self._place_pte(g, n)
        for n in sorted(by_kind.get("folio", ()), key=_key):
            self._place_near(g, n, ("folio", "folio2"), g.predecessors(n))
        for n in sorted(by_kind.get("holder", ()), key=_key):
            self._place_near(g, n, ("holder",), g.successors(n))
        for kind in ("anon_vma", "file"):
            for n in sorted(by_kind.get(kind, ()), key=_key):
                self._place_side(n)
        return new

    def port(self, u, v, a):
        """x offset from the centre of card ``v`` at which the edge ``u`` ->
        ``v`` (attributes ``a``) ends: 0, except for a PTE edge to a large
        folio, which ends where the PTE's pages lie in the folio, on the
        scale of the PTE row (so a process's PTE edges to one folio keep
        their order and cross no other of its PTE edges), within the
        middle :data:`_PORT` of the card."""
        if "nr" not in a or u not in self.pos or v not in self.width:
            return 0.0
        pid, addr = u[1], u[2]
        start = addr - a["page"] * PAGE_SIZE
        end = start + a["nr"] * PAGE_SIZE
        for s, e, *_ in self._ranges.get(pid, ()):
            if s <= addr < e:
                xs, xe = self._edge(pid, max(s, start)), self._edge(pid, min(e, end), end=True)
                frac = min(1.0, max(0.0, (self.pos[u][0] - xs) / max(xe - xs, 1e-9)))
                return (frac - 0.5) * _PORT * self.width[v]
        return 0.0

    def centers(self):
        """(xmin, xmax) of the node centres; (0, 1) when empty."""
        if not self.pos:
            return (0.0, 1.0)
        xs = [x for x, _ in self.pos.values()]
        return (min(xs), max(xs))

    def extent(self):
        """(xmin, xmax) of all cards placed, edges included; (0, 1) when empty."""
        if not self.pos:
            return (0.0, 1.0)
        lo = min(x - self.width[n] / 2 for n, (x, _) in self.pos.items())
        hi = max(x + self.width[n] / 2 for n, (x, _) in self.pos.items())
        return (lo, hi)

    def __len__(self):
        return len(self.pos)

    # -- placement ------------------------------------------------------------------
    def _w(self, kind, label=""):
        chars = max([_CHARS[kind]] + [len(line) for line in label.split("\n")])
        return self.preset.units(chars)

    def _set(self, n, x, row, w):
        self.pos[n] = (x, ROWS[row])
        self.width[n] = w
        iv = self._rows[row]
        iv.append((x - w / 2, x + w / 2))
        iv.sort()

    def _right_edge(self, rows=("task", "vma", "pte")):
        """Right end of the process blocks (the folio and holder rows may
        reach further: their cards are wider than a page slot)."""
        edges = [max(r for _, r in self._rows[row]) for row in rows if self._rows[row]]
        edges += [r[2] + r[3] for rs in self._ranges.values() for r in rs]
        return max(edges) if edges else None

    def _vmas_of(self, g, task):
        return sorted((v for v in g.successors(task) if g.nodes[v]["kind"] == "vma"),
                      key=lambda v: g.nodes[v]["start"])

    def _place_task(self, g, n):
        pid = g.nodes[n]["pid"]
        spans = [self._span(pid, g.nodes[v]["start"], g.nodes[v]["end"]) for v in self._vmas_of(g, n)]
        w = self._w("task", g.nodes[n]["label"])
        if spans:
            x = (spans[0][0] + spans[-1][1]) / 2
        else:
            right = self._right_edge()
            x = 0.0 if right is None else right + _BLOCK_GAP + w / 2
        self._set(n, self._free(("task",), x, w)[1], "task", w)

    def _place_vma(self, g, n):
        a = g.nodes[n]
        lo, hi = self._span(a["pid"], a["start"], a["end"])
        w = self._w("vma", a["label"])
        self._set(n, self._free(("vma",), (lo + hi) / 2, w)[1], "vma", w)

    def _place_pte(self, g, n):
        # a PTE, or a range of PTEs: at the centre of its pages' slots (the
        # slots of a squeezed VMA leave every PTE node of the run room for
        # its card, :meth:`_segments`, and PTE nodes of one frame never
        # share a page)
        a = g.nodes[n]
        pid = a["pid"]
        lo, hi = self._edge(pid, a["addr"]), self._edge(pid, a.get("last_addr", a["addr"]) + PAGE_SIZE, end=True)
        self._set(n, (lo + hi) / 2, "pte", self._w("pte", a["label"] if a.get("group") else ""))

    def _place_near(self, g, n, rows, neighbours):
        near = [m for m in neighbours if m in self.pos and g.nodes[m]["kind"] not in ("anon_vma", "file")]
        xs = [self.pos[m][0] for m in near]
        w = self._w(g.nodes[n]["kind"], g.nodes[n]["label"])
        # nothing placed maps or holds it yet (a page-cache page read with
        # read(2)): as far left as possible, near the rmap band and its file
        x = sum(xs) / len(xs) if xs else _MIN_X + w / 2
        forbid = {row: self._forbidden(g, near, row, w) for row in rows}
        row, x = self._free(rows, x, w, forbid)
        self._set(n, x, row, w)

    def _forbidden(self, g, near, row, w):
        """Centre positions in ``row`` where a new card would mislead: its
        edges to ``near`` would pass right under a folio card of another row,
        or the card would cover an existing mapping or holding edge."""
        y = ROWS[row]
        out = []
        for m in near:
            xm, ym = self.pos[m]
            for r2 in ("folio", "folio2"):
                yr = ROWS[r2]
                if not (min(y, ym) < yr < max(y, ym)):
                    continue
                t = (ym - yr) / (ym - y)            # where the edge crosses row r2
                for l, r in self._rows[r2]:
                    a, b = xm + (l - _CROSS - xm) / t, xm + (r + _CROSS - xm) / t
                    out.append((min(a, b), max(a, b)))
        if row in ("folio", "folio2"):
            for u, v, d in g.edges(data=True):
                if d["kind"] not in ("pte", "hold") or u not in self.pos or v not in self.pos:
                    continue
                (xu, yu), (xv, yv) = self.pos[u], self.pos[v]
                if min(yu, yv) < y < max(yu, yv):
                    xc = xu + (xv - xu) * (yu - y) / (yu - yv)
                    out.append((xc - w / 2 - _CROSS, xc + w / 2 + _CROSS))
        return out

    def _place_side(self, n):
        i = len(self._side)
        self._side.append(n)
        col, row = divmod(i, len(_SIDE_Y))
        x = _MIN_X - _BLOCK_GAP - self._side_w / 2 - col * (self._side_w + _GAP)
        self.pos[n] = (x, _SIDE_Y[row])
        self.width[n] = self._side_w

    # -- untangling ------------------------------------------------------------------
    def _untangle(self, graphs, movable):
        """Move the ``movable`` folios and holders (coordinate descent) so
        that, summed over ``graphs``, PTE and holding edges cross as little
        as possible and run under no card they do not touch.

        Every other node stays where it is; a frame counts an edge or a
        card only when it is in that frame's graph, so positions that are
        never on screen together never conflict."""
        rows_of = {"folio": ("folio", "folio2"), "holder": ("holder",)}
        edges, cards, kind, ports = {}, {}, {}, {}
        for i, g in enumerate(graphs):
            bit = 1 << i
            for u, v, d in g.edges(data=True):
                if d["kind"] in ("pte", "hold") and u in self.pos and v in self.pos:
                    edges[(u, v)] = edges.get((u, v), 0) | bit
                    ports.setdefault((u, v), d)
            for n, a in g.nodes(data=True):
                if a["kind"] in rows_of and n in self.pos:
                    cards[n] = cards.get(n, 0) | bit
                    kind[n] = a["kind"]
            if i:
                # a card gone this step is still drawn, faded, in this frame
                for n, a in graphs[i - 1].nodes(data=True):
                    if a["kind"] in rows_of and n in self.pos and n not in g:
                        cards[n] = cards.get(n, 0) | bit
                        kind[n] = a["kind"]
        movable = sorted({n for n in movable if n in kind}, key=_key)
        if not movable or not edges or len(movable) > _UNTANGLE_MAX:
            return
        nodes = sorted({x for e in edges for x in e} | set(cards), key=_key)
        idx = {n: i for i, n in enumerate(nodes)}
        elist = sorted(edges, key=lambda e: (_key(e[0]), _key(e[1])))
        U = np.array([idx[u] for u, _ in elist])
        V = np.array([idx[v] for _, v in elist])
        D = np.array([self.port(u, v, ports[(u, v)]) for u, v in elist])   # where each edge ends on its V card
        nf = len(graphs)
        P = np.array([[(edges[e] >> f) & 1 for f in range(nf)] for e in elist], dtype=float)
        clist = sorted(cards, key=_key)
        C = np.array([idx[c] for c in clist])
        N = np.array([[(cards[c] >> f) & 1 for f in range(nf)] for c in clist], dtype=float)
        # weights from the frames in which two edges / an edge and a card
        # are both drawn: a crossing on screen all the run long costs
        # _W_CROSS whatever the run's length, one in a single frame half that
        co, ec = P @ P.T, P @ N.T
        co = np.where(co > 0, 0.5 + 0.5 * co / nf, 0.0)
        ec = np.where(ec > 0, 0.5 + 0.5 * ec / nf, 0.0)
        X = np.array([self.pos[n][0] for n in nodes])
        Y = np.array([self.pos[n][1] for n in nodes])
        Wd = np.array([self.width[n] for n in nodes])
        card_of = {c: j for j, c in enumerate(clist)}
        near_of = {}
        for n in movable:
            i = idx[n]
            near = [(U[e] if V[e] == i else V[e], P[e].sum()) for e in range(len(elist)) if i in (U[e], V[e])]
            # a folio follows its PTEs; a holder (or a folio only held) its other ends
            ptes = [(j, w) for j, w in near if nodes[j][0] in ("pte", "ptes")]
            near_of[n] = ptes or near

        class _Anchors(dict):
            """The mean x of a node's neighbours, as they are placed now."""
            def __missing__(self, n):
                near = near_of[n]
                return (sum(X[j] * w for j, w in near) / sum(w for _, w in near)) if near else X[idx[n]]
        anchor = _Anchors()
        alive = np.ones(len(nodes), bool)
        args = (idx, kind, rows_of, anchor, X, Y, Wd, U, V, D, C, co, ec, card_of, alive)
        # put them back one by one in the order of their anchors (an edge
        # counts once both its ends are back), then improve one at a time
        order = sorted(movable, key=lambda n: (kind[n] != "folio", anchor[n], _key(n)))
        self._replace(order, movable, *args)
        folios = [n for n in order if kind[n] == "folio"]
        if not _tangled(X, Y, Wd, U, V, D, C, co, ec) or len(folios) > _RESTART_MAX:
            return
        # a crossing or an edge under a card is left: the first folio placed
        # takes the best spot, so try each folio first (and, for each, its
        # other row), and keep the run with the lowest total cost
        best = (self._total(X, Y, Wd, U, V, D, C, co, ec, anchor, movable, idx),
                {n: (self.pos[n], self._row_name(n)) for n in movable})
        for f in folios:
            for first_row in rows_of["folio"]:
                self._replace([f] + [n for n in order if n != f], movable, *args, first_row=first_row)
                total = self._total(X, Y, Wd, U, V, D, C, co, ec, anchor, movable, idx)
                if total < best[0] - 1e-6:
                    best = (total, {n: (self.pos[n], self._row_name(n)) for n in movable})
        for n in movable:
            self._unset(n)
        for n, ((x, y), row) in best[1].items():
            self._set(n, x, row, self.width[n])
            X[idx[n]], Y[idx[n]] = x, y

    def _replace(self, order, movable, idx, kind, rows_of, anchor, X, Y, Wd, U, V, D, C, co, ec, card_of, alive,
                 first_row=None):
        """Take the ``order`` nodes out, put them back one by one (the first
        in ``first_row`` if given), improve."""
        args = (idx, kind, rows_of, anchor, X, Y, Wd, U, V, D, C, co, ec, card_of, alive)
        for n in order:
            self._unset(n)
            alive[idx[n]] = False
        for j, n in enumerate(order):
            self._move(n, *args, force=True, only=(first_row,) if first_row and not j else None)
            alive[idx[n]] = True
        self._descend(movable, *args)

    def _descend(self, movable, *args):
        """Move one node at a time to its cheapest place until none moves."""
        for _ in range(_UNTANGLE_PASSES):
            moved = False
            for n in movable:
                self._unset(n)
                moved |= self._move(n, *args)
            if not moved:
                break

    def _row_name(self, n):
        return next(r for r in ROWS if ROWS[r] == self.pos[n][1])

    def _total(self, X, Y, Wd, U, V, D, C, co, ec, anchor, movable, idx):
        """The whole cost of the current places (crossings, edges under
        cards, distances to anchors)."""
        cost = _W_CROSS * _crossings(X, Y, U, V, co, D)
        ya, yb, xa, xb = Y[U], Y[V], X[U], X[V] + D
        cy, cx, cw = Y[C][None], X[C][None], Wd[C][None]
        lo, hi = np.minimum(ya, yb)[:, None], np.maximum(ya, yb)[:, None]
        between = (lo < cy - 1e-9) & (cy < hi - 1e-9)
        t = (ya[:, None] - cy) / np.where(ya == yb, 1.0, ya - yb)[:, None]
        xat = xa[:, None] + (xb - xa)[:, None] * t
        under = between & (np.abs(xat - cx) < cw / 2 + _CROSS) & (C[None] != U[:, None]) & (C[None] != V[:, None])
        cost += _W_UNDER * (under * ec).sum()
        cost += sum(_W_DIST * abs(X[idx[n]] - anchor[n]) + _W_ROW * (Y[idx[n]] != ROWS["folio"]
                                                                    and Y[idx[n]] != ROWS["holder"])
                    for n in movable)
        return cost

    def _move(self, n, idx, kind, rows_of, anchor, X, Y, Wd, U, V, D, C, co, ec, card_of, alive, force=False,
              only=None):
        """Place ``n`` (unset now) at its cheapest candidate (in the rows
        ``only``, if given); True if it moved."""
        i = idx[n]
        rows = rows_of[kind[n]]
        if only:
            rows = tuple(r for r in rows if r in only)
        row_now = next(r for r in ROWS if ROWS[r] == Y[i])
        cands = self._candidates(n, rows, anchor[n], X, Y, U, V, D, i)
        alive[i] = True                 # its own edges count, its card is skipped
        live = alive[U] & alive[V]
        me = card_of.get(n)
        cost = self._cost(i, cands, anchor[n], X, Y, Wd, U[live], V[live], D[live], C[alive[C]],
                          co[np.ix_(live, live)],
                          ec[np.ix_(live, alive[C])], None if me is None else ec[live, me], rows)
        a = anchor[n]
        cx = np.array([c[1] for c in cands])
        here = [k for k, (row, x) in enumerate(cands) if row == row_now and abs(x - X[i]) < 1e-9]
        notnow = np.ones(len(cands), bool)
        notnow[here] = False
        # cheapest; then staying put; then nearest its anchor; then rightmost
        best = int(np.lexsort((-cx, np.round(np.abs(cx - a), 6), notnow, np.round(cost, 6)))[0])
        if here and not force and cost[best] >= cost[here[0]] - 1e-6:
            best = here[0]
        row, x = cands[best][0], float(cands[best][1])
        self._set(n, x, row, Wd[i])
        moved = (row, x) != (row_now, X[i])
        X[i], Y[i] = x, ROWS[row]
        return moved

    def _main_extent(self):
        """(left, right) of the process, VMA and PTE rows, at least as wide
        as the narrowest figure shows anyway."""
        iv = [x for row in ("task", "vma", "pte") for x in self._rows[row]]
        lo = min([l for l, _ in iv] + [_MIN_X])
        hi = max([r for _, r in iv] + [lo])
        p = self.preset
        return (lo, max(hi, lo + 0.6 * p.width * p.dpi / p.unit_px))

    def _unset(self, n):
        x, y = self.pos.pop(n)
        w = self.width[n]
        row = next(r for r in ROWS if ROWS[r] == y)
        iv = self._rows[row]
        for k, (l, r) in enumerate(iv):
            if abs(l - (x - w / 2)) < 1e-9 and abs(r - (x + w / 2)) < 1e-9:
                del iv[k]
                break

    def _candidates(self, n, rows, anchor, X, Y, U, V, D, i):
        """(row, x) places where card ``n`` fits (it is not placed now)."""
        w = self.width[n]
        inc = (U == i) | (V == i)
        other = np.where(U[inc] == i, V[inc], U[inc])
        xm, ym = X[other] + np.where(U[inc] == i, D[inc], 0.0), Y[other]
        out = []
        for row in rows:
            y = ROWS[row]
            iv = np.array(self._rows[row], float).reshape(-1, 2)
            gap = _ROW_GAP.get(row, _GAP)
            xs = [np.array([anchor, X[i], _MIN_X + w / 2]), iv[:, 0] - gap - w / 2, iv[:, 1] + gap + w / 2, xm]
            clear = []
            # where one of its edges just clears a card of a row it passes
            for r2 in ("folio", "folio2"):
                yr = ROWS[r2]
                cut = (np.minimum(y, ym) < yr) & (yr < np.maximum(y, ym))
                if not cut.any() or not self._rows[r2]:
                    continue
                t = ((ym[cut] - yr) / (ym[cut] - y))[:, None]
                lr = np.array(self._rows[r2], float)
                clear += [(xm[cut][:, None] + (lr[None, :, 0] - _CROSS - 1e-3 - xm[cut][:, None]) / t).ravel(),
                          (xm[cut][:, None] + (lr[None, :, 1] + _CROSS + 1e-3 - xm[cut][:, None]) / t).ravel()]
            # just beside an edge that passes this row
            ya, yb, xa, xb = Y[U[~inc]], Y[V[~inc]], X[U[~inc]], X[V[~inc]] + D[~inc]
            cut = (np.minimum(ya, yb) < y) & (y < np.maximum(ya, yb))
            xc = xa[cut] + (xb[cut] - xa[cut]) * (ya[cut] - y) / (ya[cut] - yb[cut])
            xs += [xc - w / 2 - _CROSS - 1e-3, xc + w / 2 + _CROSS + 1e-3]
            # the nearest to its anchor of each kind (a place that clears a
            # card may lie far away: one far off can be the only clean one)
            picked = [self._fitting(np.concatenate(part), w, gap, iv, anchor) for part in (xs, clear) if part]
            c = np.unique(np.concatenate(picked))
            out += [(row, float(x)) for x in c]
        return out

    @staticmethod
    def _fitting(c, w, gap, iv, anchor):
        """The centres ``c`` where a card of width ``w`` fits in a row with
        cards ``iv``, at most :data:`_CANDIDATES` of them, nearest ``anchor``."""
        c = np.unique(np.round(c, 6))
        ok = c - w / 2 >= _MIN_X - 1e-6
        if len(iv):
            ok &= ((c[:, None] + w / 2 + gap <= iv[None, :, 0] + 1e-6) |
                   (c[:, None] - w / 2 - gap >= iv[None, :, 1] - 1e-6)).all(axis=1)
        c = c[ok]
        if len(c) > _CANDIDATES:
            c = c[np.argsort(np.abs(c - anchor), kind="stable")[:_CANDIDATES]]
        return c

    def _cost(self, i, cands, anchor, X, Y, Wd, U, V, D, C, co, ec, ec_me, rows):
        """Cost of each candidate place of node ``i`` (see :meth:`_untangle`):
        ``U``, ``V``, ``C`` and the weights are those of the edges and cards
        already placed; ``ec_me`` the frames each edge shares with ``i``."""
        cx = np.array([c[1] for c in cands])[:, None]
        cy = np.array([ROWS[c[0]] for c in cands])[:, None]
        inc = np.flatnonzero((U == i) | (V == i))
        cost = _W_DIST * np.abs(cx[:, 0] - anchor) + _W_ROW * np.array([rows.index(c[0]) for c in cands])
        # a card beyond the process blocks widens the whole figure
        lo, hi = self._main_extent()
        w = Wd[i] / 2
        cost += _W_WIDEN * (np.maximum(0, cx[:, 0] + w - hi) + np.maximum(0, lo - (cx[:, 0] - w)))
        if len(inc):
            other = np.where(U[inc] == i, V[inc], U[inc])             # (k,)
            # an edge ends on a V card at its port (:meth:`port`)
            ox = (X[other] + np.where(U[inc] == i, D[inc], 0.0))[None, :, None]
            oy = Y[other][None, :, None]
            px, py = (cx + np.where(V[inc] == i, D[inc], 0.0)[None, :])[:, :, None], cy[:, :, None]
            ax, ay, bx, by = X[U][None, None, :], Y[U][None, None, :], (X[V] + D)[None, None, :], Y[V][None, None, :]
            o1 = _orient(ox, oy, px, py, ax, ay)
            o2 = _orient(ox, oy, px, py, bx, by)
            o3 = _orient(ax, ay, bx, by, ox, oy)
            o4 = _orient(ax, ay, bx, by, px, py)
            cross = (o1 * o2 < 0) & (o3 * o4 < 0)
            shared = (U[None, :] == i) | (V[None, :] == i) | (U[None, :] == other[:, None]) | \
                (V[None, :] == other[:, None])
            cross &= ~shared[None]
            cost += _W_CROSS * (cross * co[inc][None]).sum(axis=(1, 2))
            # the moved edges under other cards
            cyc, cxc, cwc = Y[C][None, None, :], X[C][None, None, :], Wd[C][None, None, :]
            lo, hi = np.minimum(oy, py), np.maximum(oy, py)
            between = (lo < cyc - 1e-9) & (cyc < hi - 1e-9)
            t = (oy - cyc) / np.where(oy == py, 1.0, oy - py)
            xat = ox + (px - ox) * t
            under = between & (np.abs(xat - cxc) < cwc / 2 + _CROSS)
            under &= (C[None, None, :] != i) & (C[None, None, :] != other[None, :, None])
            cost += _W_UNDER * (under * ec[inc][None]).sum(axis=(1, 2))
        if ec_me is not None:
            # other edges under the moved card
            others = np.flatnonzero((U != i) & (V != i))
            if len(others):
                ya, yb, xa, xb = Y[U[others]], Y[V[others]], X[U[others]], X[V[others]] + D[others]
                lo, hi = np.minimum(ya, yb)[None], np.maximum(ya, yb)[None]
                between = (lo < cy - 1e-9) & (cy < hi - 1e-9)
                t = (ya[None] - cy) / np.where(ya == yb, 1.0, ya - yb)[None]
                xat = xa[None] + (xb - xa)[None] * t
                under = between & (np.abs(xat - cx) < Wd[i] / 2 + _CROSS)
                cost += _W_UNDER * (under * ec_me[others][None]).sum(axis=1)
        return cost

    # -- slots ------------------------------------------------------------------------
    def _span(self, pid, start, end):
        """(left, right) of the page slots of ``[start, end)`` in process ``pid``,
        allocating a new range when the addresses were never seen."""
        rs = self._ranges.setdefault(pid, [])
        for s, e, x0, slots, _, _ in rs:
            if s <= start and end <= e:
                return (self._edge(pid, start), self._edge(pid, end, end=True))
        segs, used = self._segments(pid, start, end)
        slots = max(used, self._w("vma") + _GAP)
        if rs:
            x0 = max(s[2] + s[3] for s in rs) + _RANGE_GAP
            right = self._right_edge_excluding(pid)
            if right is not None and x0 + slots > right - _BLOCK_GAP and x0 < right:
                x0 = right + _BLOCK_GAP
        else:
            right = self._right_edge()
            x0 = 0.0 if right is None else right + _BLOCK_GAP
        off = (slots - used) / 2
        rs.append((start, end, x0, slots, used, [(p0, p1, x0 + off + a, x0 + off + b) for p0, p1, a, b in segs]))
        return (self._edge(pid, start), self._edge(pid, end, end=True))

    def _segments(self, pid, start, end):
        """([(first page, end page, left, right)], width): how the pages of
        a new range ``[start, end)`` map to x (relative to its left end).

        One slot per page up to the cap; a bigger range is squeezed into
        the cap, except that every PTE node of the run (:meth:`_note_ptes`)
        keeps a span at least as wide as its card: the range is cut where
        one starts or ends, each piece gets what the nodes over it need, and
        the rest of the cap is shared by page count (so the range may grow
        beyond the cap when many nodes need room)."""
        npages = (end - start) // PAGE_SIZE
        if npages <= self._cap:
            return [(0, npages, 0.0, float(npages))], float(npages)
        spans = sorted({(max(0, (a - start) // PAGE_SIZE), min(npages, (b - start) // PAGE_SIZE), w)
                        for a, b, w in self._pte_spans.get(pid, ()) if a < end and b > start})
        cuts = sorted({0, npages} | {c for a, b, _ in spans for c in (a, b)})
        need = [0.0] * (len(cuts) - 1)
        index = {c: i for i, c in enumerate(cuts)}
        for a, b, w in sorted(spans, key=lambda t: (index[t[1]] - index[t[0]], t)):
            ids = range(index[a], index[b])
            short = w + _GAP - sum(need[i] for i in ids)
            for i in ids:
                need[i] += max(0.0, short) / len(ids)
        budget = float(self._cap)
        spare = max(0.0, budget - sum(need))
        widths = [nd + spare * (cuts[i + 1] - cuts[i]) / npages for i, nd in enumerate(need)]
        segs, x = [], 0.0
        for i, wd in enumerate(widths):
            segs.append((cuts[i], cuts[i + 1], x, x + wd))
            x += wd
        return segs, x

    def _right_edge_excluding(self, pid):
        """Right edge of the blocks of processes placed after ``pid``'s first range."""
        mine = self._ranges[pid][0][2]
        others = [r[2] for p, rs in self._ranges.items() if p != pid for r in rs if r[2] > mine]
        return min(others) if others else None

    def _edge(self, pid, addr, end=False):
        """x of the left edge of the page at ``addr`` (with ``end``: of the
        right edge of the page before it)."""
        for s, e, x0, slots, used, segs in self._ranges.get(pid, ()):
            if (s < addr <= e) if end else (s <= addr < e):
                page = (addr - s) // PAGE_SIZE
                for p0, p1, a, b in segs:
                    if p0 <= page <= p1:
                        return a + (b - a) * (page - p0) / (p1 - p0)
        # an address outside every known range (a VMA never seen): a new range
        self._span(pid, addr - PAGE_SIZE if end else addr, addr if end else addr + PAGE_SIZE)
        return self._edge(pid, addr, end)

    def _slot(self, pid, addr):
        """x of the centre of the page at ``addr``."""
        return (self._edge(pid, addr) + self._edge(pid, addr + PAGE_SIZE, end=True)) / 2

    def _free(self, rows, x, w, forbid=None):
        """The (row, x) nearest to ``x`` where a card of width ``w`` fits,
        avoiding the centre ranges ``forbid[row]`` when possible; ties go to
        the first row, then to the right."""
        best = fallback = None
        for r_i, row in enumerate(rows):
            iv = self._rows[row]
            gap = _ROW_GAP.get(row, _GAP)
            bad = (forbid or {}).get(row, ())
            cands = [x, _MIN_X + w / 2] + [l - gap - w / 2 for l, _ in iv] + [r + gap + w / 2 for _, r in iv]
            cands += [c for a, b in bad for c in (a - 1e-6, b + 1e-6)]
            for c in cands:
                if c - w / 2 < _MIN_X - 1e-9 or not all(c + w / 2 + gap <= l + 1e-9 or c - w / 2 - gap >= r - 1e-9
                                                        for l, r in iv):
                    continue
                score = (round(abs(c - x), 6), r_i, -c)
                if fallback is None or score < fallback[0]:
                    fallback = (score, row, c)
                if all(not (a < c < b) for a, b in bad) and (best is None or score < best[0]):
                    best = (score, row, c)
        best = best or fallback
        return best[1], best[2]


def _tangled(X, Y, Wd, U, V, D, C, co, ec):
    """Is an edge crossing another, or running under a card it does not touch?"""
    if _crossings(X, Y, U, V, co, D):
        return True
    ya, yb, xa, xb = Y[U], Y[V], X[U], X[V] + D
    cy, cx, cw = Y[C][None], X[C][None], Wd[C][None]
    between = (np.minimum(ya, yb)[:, None] < cy - 1e-9) & (cy < np.maximum(ya, yb)[:, None] - 1e-9)
    t = (ya[:, None] - cy) / np.where(ya == yb, 1.0, ya - yb)[:, None]
    xat = xa[:, None] + (xb - xa)[:, None] * t
    under = between & (np.abs(xat - cx) < cw / 2) & (C[None] != U[:, None]) & (C[None] != V[:, None])
    return bool((under & (ec > 0)).any())


def _crossings(X, Y, U, V, co, D=0.0):
    """Pairs of edges that cross, each counted once per frame showing both
    (edge ``e`` ends ``D[e]`` right of the centre of its V card)."""
    ax, ay, bx, by = X[U], Y[U], X[V] + D, Y[V]
    o1 = _orient(ax[:, None], ay[:, None], bx[:, None], by[:, None], ax[None], ay[None])
    o2 = _orient(ax[:, None], ay[:, None], bx[:, None], by[:, None], bx[None], by[None])
    cross = (o1 * o2 < 0) & (o1.T * o2.T < 0)
    shared = (U[:, None] == U[None]) | (U[:, None] == V[None]) | (V[:, None] == U[None]) | (V[:, None] == V[None])
    return float(((cross & ~shared) * co).sum() / 2)


def _orient(ax, ay, bx, by, cx, cy):
    """Sign of the turn a -> b -> c (0 when nearly collinear)."""
    v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    return np.where(np.abs(v) < 1e-9, 0, np.sign(v))


def _key(n):
    return tuple(str(x) if not isinstance(x, int) else f"{x:020d}" for x in n)
