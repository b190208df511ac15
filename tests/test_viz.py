"""Tests of mmkit.viz: graph content, diffs, grouping, layout, drawing, export."""

import io
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mmkit import Kernel
from mmkit.bench_viz import lecture_scenario
from mmkit.errors import InvalidArgument
from mmkit.kernel import ZERO_PFN
from matplotlib.transforms import Bbox

from mmkit.era import ERAS as ERA_NAMES
from mmkit.scenarios import COW_CASES, NON_ANON_CASES, TOPICS
from mmkit.scenarios.topics import LARGE_TOPICS
from mmkit.scenarios.cow_large import LARGE_TOPICS as COW_LARGE_TOPICS
from mmkit.scenarios.collapse import COLLAPSE_SCENARIOS
from mmkit.scenarios.huge_zero import HUGE_ZERO_SCENARIOS
from mmkit.viz import (GraphView, Layout, Playback, draw, frame_strip, graph_diff, render_frames, rmap_graph,
                       save, save_gif)
from mmkit.viz.graph import KINDS
from mmkit.viz.layout import ROWS

ERAS = ("5.7", "6.18")
SCENARIOS = [(name, sc) for name, sc in TOPICS.items()] + [(c.name, c) for c in COW_CASES]


def run_states(sc, era):
    """Yield (kernel, handles, graph) after every step of ``sc``."""
    k = Kernel(era=era)
    s = SimpleNamespace()
    for i in range(len(sc)):
        sc.run_step(k, s, i)
        yield k, s, rmap_graph(k)


def state_at(sc, era, i):
    """(kernel, handles, graph) after steps 0..i of ``sc``."""
    k = Kernel(era=era)
    s = SimpleNamespace()
    for j in range(i + 1):
        sc.run_step(k, s, j)
    return k, s, rmap_graph(k)


def check_graph(k, g):
    """Assert that graph ``g`` shows exactly the state of kernel ``k``."""
    for n, a in g.nodes(data=True):
        assert a["kind"] in KINDS and isinstance(a["label"], str) and a["label"], n
    for u, v, a in g.edges(data=True):
        assert "kind" in a, (u, v)
    folios = {}
    for pid, t in k.tasks.items():
        assert g.nodes[("task", pid)]["alive"] == t.alive
        if not t.alive:
            continue
        for vma in t.mm.vmas:
            va = g.nodes[("vma", vma.id)]
            assert (va["start"], va["end"], va["prot"], va["shared"]) == (vma.start, vma.end, vma.prot, vma.shared)
            assert g.has_edge(("task", pid), ("vma", vma.id), "mm")
            for avc in vma.anon_vma_chain:
                assert g.edges[("anon_vma", avc.anon_vma.id), ("vma", vma.id), "avc"]["own"] == \
                    (vma.anon_vma is avc.anon_vma)
            for addr, e in t.mm.ptes(vma.start, vma.end):
                pn = ("pte", pid, addr)
                assert g.nodes[pn]["write"] == bool(getattr(e, "write", False))
                assert g.nodes[pn]["migration"] == (not e.present)
                assert g.has_edge(("vma", vma.id), pn, "page_table")
                assert g.has_edge(pn, ("folio", e.folio.pfn), "pte")
                folios[e.folio.pfn] = e.folio
    for h in k.holders.values():
        if h.released:
            assert ("holder", h.id) not in g
            continue
        assert g.nodes[("holder", h.id)]["holder_kind"] == h.kind
        assert g.out_degree(("holder", h.id)) == len(h.buffers)
        for b in h.buffers:
            assert g.has_edge(("holder", h.id), ("folio", b[0].pfn))
            folios[b[0].pfn] = b[0]
    for f in k.files.values():
        assert g.nodes[("file", f.id)]["cached"] == len(f.pages)
        for index, folio in f.pages.items():
            assert g.edges[("file", f.id), ("folio", folio.pfn), "page_cache"]["index"] == index
            folios[folio.pfn] = folio
        for vma in f.i_mmap:
            assert g.has_edge(("file", f.id), ("vma", vma.id), "i_mmap")
    assert {n[1] for n in g if n[0] == "folio"} == set(folios)
    for pfn, f in folios.items():
        a = g.nodes[("folio", pfn)]
        assert (a["refcount"], a["mapcount"], a["pincount"]) == (f.refcount, f.mapcount, f.pincount)
        assert (a["exclusive"], a["zero"], a["anon"]) == (f.anon_exclusive, f.zero, f.anon)
        assert a["pinned"] == (f.pincount > 0)
        assert a["orphan"] == (not f.zero and not f.anon and f.mapping is None)
        if f.mapping is not None:
            target = ("anon_vma", f.mapping.id) if f.anon else ("file", f.mapping.id)
            assert g.has_edge(("folio", pfn), target, "mapping")


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("name,sc", SCENARIOS, ids=[n for n, _ in SCENARIOS])
def test_graph_matches_kernel_after_every_step(name, sc, era):
    """After every step of every shipped scenario, the graph shows exactly the kernel's state."""
    for k, _, g in run_states(sc, era):
        check_graph(k, g)
        assert not g.graph["grouped"]


def test_fork_graph_by_era():
    """fork clears PageAnonExclusive (6.18); 5.7 has no such flag; both PTEs become read-only."""
    for era, ae in (("6.18", True), ("5.7", False)):
        k, s, g1 = state_at(TOPICS["fork"], era, 0)
        pfn = k.page(s.p, s.a).pfn
        assert g1.nodes[("folio", pfn)]["exclusive"] is ae
        assert g1.nodes[("pte", s.p.pid, s.a)]["write"] is True
        k, s, g2 = state_at(TOPICS["fork"], era, 1)
        f = g2.nodes[("folio", pfn)]
        assert (f["refcount"], f["mapcount"], f["exclusive"]) == (2, 2, False)
        assert not g2.nodes[("pte", s.p.pid, s.a)]["write"] and not g2.nodes[("pte", s.c.pid, s.a)]["write"]
        assert g2.has_edge(("pte", s.c.pid, s.a), ("folio", pfn), "pte")
        assert f["label"] == f"pfn {pfn}\nr2 m2 p0"


def test_truncated_pinned_page_is_an_orphan():
    """After truncation a pinned page-cache folio is an orphan held only by the pin."""
    k, s, g = state_at(TOPICS["truncate_shared"], "6.18", 3)
    (pfn,) = s.pin.pfns
    f = g.nodes[("folio", pfn)]
    assert f["orphan"] and not f["in_page_cache"] and f["pinned"] and f["mapcount"] == 0
    assert f["label"].startswith(f"orphan {pfn}")
    assert [u for u, _, a in g.in_edges(("folio", pfn), data=True)] == [("holder", s.pin.id)]
    assert g.nodes[("file", s.f.id)]["cached"] == 0


def test_zero_page_and_pipe_nodes():
    """A read fault maps the zero page read-only; vmsplice adds a pipe holding the page."""
    k, s, g = state_at(TOPICS["first_touch"], "6.18", 1)
    assert g.nodes[("folio", ZERO_PFN)]["zero"] and g.nodes[("folio", ZERO_PFN)]["label"].startswith("zero page")
    assert g.nodes[("pte", s.p.pid, s.a)]["write"] is False
    k, s, g = state_at(TOPICS["vmsplice_child"], "6.18", 2)
    h = g.nodes[("holder", s.pipe.id)]
    assert h["holder_kind"] == "pipe" and h["owner"] == s.c.pid
    assert g.has_edge(("holder", s.pipe.id), ("folio", k.page(s.p, s.a).pfn))


def test_parallel_edges_are_kept_and_drawn_apart():
    """A pin holding the zero page twice gives two edges, drawn with distinct curvature."""
    k = Kernel()
    p = k.spawn("p")
    a = p.mmap(2)
    p.read(a, 2 * k.PAGE_SIZE)
    pin = p.pin(a, 2, write=False, longterm=False)
    g = rmap_graph(k)
    hid, zid = ("holder", pin.id), ("folio", ZERO_PFN)
    assert g.number_of_edges(hid, zid) == 2
    view = GraphView("compact")
    view.draw(g)
    p0, p1 = (np.asarray(view.paths[(hid, zid, i)]) for i in (0, 1))
    mid0, mid1 = p0[len(p0) // 2], p1[len(p1) // 2]
    assert np.hypot(*(mid0 - mid1)) > 0.2
    assert np.allclose(p0[0], p1[0]) and np.allclose(p0[-1], p1[-1])


def test_diff_reports_counters_flags_and_write_protection():
    """The diff of a fork names the counters that changed, AE cleared and W→RO."""
    k = Kernel()
    p = k.spawn("p")
    a = p.mmap(1)
    p.write(a, b"x")
    g0 = rmap_graph(k)
    c = p.fork("c")
    d = graph_diff(g0, rmap_graph(k))
    pfn = k.page(p, a).pfn
    assert d.changed[("folio", pfn)] == ["r 1→2", "m 1→2", "AE cleared"]
    assert d.changed[("pte", p.pid, a)] == ["W→RO"]
    assert ("task", c.pid) in d.new and not d.gone
    assert (("pte", c.pid, a), ("folio", pfn), "pte") in d.new_edges
    assert d.state(("task", p.pid)) == "same"


def _big(pages=100):
    k = Kernel()
    p = k.spawn("parent")
    a = p.mmap(pages)
    p.write(a, b"x" * (pages * k.PAGE_SIZE))
    c = p.fork("child")
    return k, p, c, a


def test_large_state_groups_identical_pages():
    """Above the threshold, identical pages become one range node, and so do their PTEs."""
    k, p, c, a = _big(100)
    g = rmap_graph(k)
    assert g.graph["grouped"]
    (grp,) = [n for n in g if n[0] == "folios"]
    f = g.nodes[grp]
    assert f["count"] == 100 and f["label"] == "pages 0–99 (100)\nshared r2 m2 p0"
    assert (f["refcount"], f["mapcount"], f["exclusive"]) == (2, 2, False)
    ptes = [n for n in g if n[0] == "ptes"]
    assert sorted(g.nodes[n]["pid"] for n in ptes) == [p.pid, c.pid]
    assert all(g.edges[n, grp, "pte"]["count"] == 100 for n in ptes)
    assert len(g) < 12
    assert not rmap_graph(k, group=None).graph["grouped"]
    assert len(rmap_graph(k, group=None)) > 300


def test_expand_shows_a_range_page_by_page():
    """Expanding a pfn range or a VMA shows those pages (and their PTEs) one by one."""
    k, p, c, a = _big(100)
    first = k.page(p, a).pfn
    g = rmap_graph(k, expand=[range(first, first + 5)])
    assert all(("folio", first + i) in g for i in range(5))
    assert ("pte", p.pid, a) in g and ("pte", c.pid, a) in g
    rest = [n for n in g if n[0] == "folios"]
    assert [g.nodes[n]["count"] for n in rest] == [95]
    vma = p.mm.vmas[0]
    g2 = rmap_graph(k, expand=[("vma", vma.id)])
    assert sum(1 for n in g2 if n[0] == "folio") == 100


def test_regrouping_is_not_reported_as_new_pages():
    """When a write splits a range, the untouched pages are not new and nothing is freed."""
    k, p, c, a = _big(100)
    g0 = rmap_graph(k)
    c.write(a + 40 * k.PAGE_SIZE, b"y" * (10 * k.PAGE_SIZE))
    g1 = rmap_graph(k)
    d = graph_diff(g0, g1)
    new_folios = [n for n in d.new if g1.nodes[n]["kind"] == "folio"]
    assert [g1.nodes[n]["label"].split("\n")[0] for n in new_folios] == ["pages 40–49 (10)"]
    assert not d.gone
    changed = {g1.nodes[n]["label"].split("\n")[0]: ch for n, ch in d.changed.items() if n[0] == "folios"}
    assert changed == {"pages 40–49 (10)": ["r 2→1", "m 2→1"]}


def test_positions_never_move_across_steps():
    """Every node keeps its position from one step to the next, in every shipped scenario (large-folio topics included)."""
    for name, sc in SCENARIOS + list(LARGE_TOPICS.items()):
        for era in ERAS:
            lay = Layout("compact")
            before = {}
            for _, _, g in run_states(sc, era):
                lay.update(g)
                assert all(n in lay.pos for n in g)
                for n, xy in before.items():
                    assert lay.pos[n] == xy, (name, era, n)
                before = dict(lay.pos)


def test_layout_is_deterministic_and_layered():
    """Two layouts of the same run are identical; rows go processes, VMAs, PTEs, folios, holders."""
    graphs = Playback(lecture_scenario()).all_graphs()
    a, b = Layout("lecture").plan(graphs), Layout("lecture").plan(graphs)
    assert a.pos == b.pos
    ys = {kind: {a.pos[n][1] for g in graphs for n in g if g.nodes[n]["kind"] == kind}
          for kind in ("task", "vma", "pte", "folio")}
    assert min(ys["task"]) > max(ys["vma"]) > max(ys["pte"]) > max(ys["folio"])
    assert all(a.pos[n][0] < 0 for g in graphs for n in g if n[0] == "anon_vma")


def test_cards_in_a_row_do_not_overlap():
    """No two cards of one row overlap (page-table entries sit in their own page slots)."""
    lay = Layout("lecture").plan(Playback(lecture_scenario()).all_graphs())
    rows = {}
    for n, (x, y) in lay.pos.items():
        if n[0] not in ("pte", "anon_vma", "file"):
            rows.setdefault(y, []).append((x - lay.width[n] / 2, x + lay.width[n] / 2))
    for y, iv in rows.items():
        iv.sort()
        assert all(r0 <= l1 + 1e-9 for (_, r0), (l1, _) in zip(iv, iv[1:])), y


def test_edges_do_not_pass_under_unrelated_folios():
    """When folios are placed, their PTE edges do not run under another folio's card."""
    pb = Playback(lecture_scenario())
    pb.step()
    g = pb.graph()
    lay = Layout("lecture").plan([g])
    upper = [n for n in g if n[0] == "folio" and lay.pos[n][1] == ROWS["folio"]]
    for u, v, a in g.edges(data=True):
        if a["kind"] != "pte" or lay.pos[v][1] != ROWS["folio2"]:
            continue
        (xu, yu), (xv, yv) = lay.pos[u], lay.pos[v]
        xc = xu + (xv - xu) * (yu - ROWS["folio"]) / (yu - yv)
        for n in upper:
            assert abs(xc - lay.pos[n][0]) > lay.width[n] / 2, (u, v, n)


def test_view_highlights_changes_and_fades_gone_nodes():
    """New and changed nodes are highlighted and annotated; removed ones are drawn faded."""
    pb = Playback("cow_child_writes")
    view = GraphView("compact")
    view.layout.plan(pb.all_graphs())
    pb.goto(2)
    view.draw(pb.graph(), prev=pb.graph(1))
    s = pb.ns
    assert view.drawn[("task", s.c.pid)] == "new"
    assert view.drawn[("pte", s.p.pid, s.a)] == "changed"
    assert view.notes[("pte", s.p.pid, s.a)] == "W→RO"
    pb.step()
    view.draw(pb.graph(), prev=pb.graph(2))
    new = pb.kernel.page(s.c, s.a).pfn
    assert view.drawn[("folio", new)] == "new" and view.notes[("folio", new)] == "new page"
    pb2 = Playback("truncate_shared")
    pb2.goto(4)
    view2 = GraphView("compact")
    view2.draw(pb2.graph(), prev=pb2.graph(3))
    assert view2.drawn[("pte", pb2.ns.p.pid, pb2.ns.m)] == "gone"


def test_fast_frame_matches_a_full_matplotlib_draw():
    """The blitted frame with cached cards equals what savefig draws, up to antialiasing."""
    pb = Playback("pin_before_fork")
    pb.goto(3)
    view = GraphView("compact")
    view.draw(pb.graph(), prev=pb.graph(2), title="step 3", caption="fork", era="6.18")
    fast = view.rgba()[..., :3].astype(int)
    buf = io.BytesIO()
    view.figure.savefig(buf, format="png", dpi=view.figure.dpi)
    full = np.asarray(Image.open(buf).convert("RGB")).astype(int)
    assert fast.shape == full.shape
    diff = np.abs(fast - full).sum(-1)
    assert (diff > 60).mean() < 0.01
    assert (fast.sum(-1) < 300).mean() > 0.01          # there is ink


def test_presets_and_empty_state():
    """The lecture preset is larger than the compact one; an empty kernel draws a hint."""
    k = Kernel()
    small, big = draw(k, preset="compact"), draw(k, preset="lecture")
    assert big.dpi > small.dpi and big.get_figwidth() > small.get_figwidth()
    view = GraphView("compact")
    view.draw(rmap_graph(k))
    assert view.empty.get_text().startswith("nothing mapped")
    with pytest.raises(InvalidArgument):
        GraphView("poster")


def test_playback_back_restores_the_snapshot():
    """back() restores the state and trace of the previous step without replaying from the start."""
    calls = []
    sc = lecture_scenario()
    steps = list(sc.steps)
    sc.steps = [type(st)(st.name, st.explain, (lambda f, i: lambda k, s: (calls.append(i), f(k, s))[1])(st.fn, i))
                for i, st in enumerate(steps)]
    pb = Playback(sc)
    pb.goto(3)
    trace_len = len(pb.kernel.trace)
    page = pb.kernel.page(pb.ns.p, pb.ns.a)
    pb.step()
    pb.back()
    assert calls == [0, 1, 2, 3]
    assert pb.index == 3 and len(pb.kernel.trace) == trace_len
    assert pb.kernel.page(pb.ns.p, pb.ns.a) == page
    assert pb.graph(1).number_of_nodes() < pb.graph().number_of_nodes()


def test_save_png_svg_pdf(tmp_path):
    """save() writes PNG, SVG and PDF files that open as such; other suffixes are refused."""
    pb = Playback("fork")
    pb.goto(2)
    view = GraphView("lecture")
    view.draw(pb.graph(), prev=pb.graph(1), title="fork")
    png = save(view, tmp_path / "f.png")
    with Image.open(png) as im:
        assert im.size == (1280, 720)
    root = ET.parse(save(view.figure, tmp_path / "f.svg")).getroot()
    assert root.tag.endswith("svg") and root.get("width").endswith("pt")
    pdf = save(view, tmp_path / "f.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1
    with pytest.raises(InvalidArgument):
        save(view, tmp_path / "f.jpg")


def test_gif_and_frame_strip(tmp_path):
    """A run exports as an animated GIF (one frame per state) and as a strip of frames."""
    n = len(TOPICS["fork"])
    path = save_gif("fork", tmp_path / "fork.gif", preset="compact")
    with Image.open(path) as im:
        assert im.n_frames >= n + 1
        first = np.asarray(im.convert("RGB")).copy()
        im.seek(n)
        last = np.asarray(im.convert("RGB"))
        assert first.shape == last.shape and (first != last).any()
    frames = render_frames("fork")
    assert len(frames) == n + 1 and frames[0].shape[2] == 4
    fig = frame_strip("fork", cols=2)
    out = save(fig, tmp_path / "strip.png")
    with Image.open(out) as im:
        w, h = im.size
    assert w > frames[0].shape[1] * 2 - 10 and h > frames[0].shape[0] * 2 - 200


# -- figures that never mislead (issue 10, section 4) ------------------------------------
ALL_ERAS = tuple(ERA_NAMES)
ALL_SCENARIOS = SCENARIOS + [(c.name, c) for c in NON_ANON_CASES] + [(n, sc) for n, sc in LARGE_TOPICS.items()]
#: The only frames of the shipped scenarios whose mapping edges cross: after
#: fork in "migration", pages a and b are each mapped by the parent and the
#: child, in the order parent a, parent b, child a, child b, and no drawing
#: with the PTEs in their row and the pages under them avoids one crossing
#: (see layered_minimum()).
#: Large-folio frames may cross too, never more than layered_minimum(): in
#: mthp_fork_cow before v6.8 (no mTHP: 16 small pages, each mapped by the
#: parent and the child in that order, one crossing per pair of pages,
#: C(16, 2) = 120), and where a parent and a child each map one THP by PTEs
#: on both sides of their own copies (thp_fork_cow 5.9-6.2, large_thp_unshare,
#: thp_partial_unmap): 1 or 2 each.
UNAVOIDABLE = {("migration", i): 1 for i in range(2, 7)}


def _runs_in(sc, era):
    """Does every step of ``sc`` run under ``era``?  (The cow.c-style
    large-folio topics set per-size THP policy, which exists from v6.8.)"""
    return len(Playback(sc, era).all_graphs()) == len(sc.steps) + 1


COW_LARGE_TOPICS_NAMED = [(sc.name, sc) for sc in COW_LARGE_TOPICS + HUGE_ZERO_SCENARIOS + COLLAPSE_SCENARIOS]
#: The large-folio topics of mmkit.scenarios.cow_large, and the huge zero
#: folio and collapse scenarios, each with the eras it runs in.
COW_LARGE = [(name, sc, tuple(e for e in ALL_ERAS if _runs_in(sc, e))) for name, sc in COW_LARGE_TOPICS_NAMED]
#: Every (name, scenario, eras) the figure checks cover: the base scenarios
#: and the large-folio topics of mmkit.scenarios.topics in every era, the
#: cow_large topics in the eras they run in.
FIGURE_CASES = [(name, sc, ALL_ERAS) for name, sc in ALL_SCENARIOS] + COW_LARGE


def planned_frames(sc, era, preset="compact"):
    """(view, [(graph, prev)]): every state of a run of ``sc`` with the
    layout planned over the whole run, as the stepper plans it."""
    pb = Playback(sc, era)
    graphs = pb.all_graphs()
    view = GraphView(preset)
    view.layout.plan(graphs)
    view.fit()
    return view, [(g, graphs[i - 1] if i else None) for i, g in enumerate(graphs)]


def drawn_segments(view, g, kinds=("pte", "hold")):
    """[((u, v), [(p, q), ...])]: the drawn polylines of the edges of ``g``
    of these kinds (layout units), as the view computed them."""
    out = []
    for (u, v, k), path in view.paths.items():
        if g.has_edge(u, v, k) and g.edges[u, v, k]["kind"] in kinds:
            pts = [tuple(map(float, p)) for p in path]
            out.append(((u, v), list(zip(pts, pts[1:]))))
    return out


def _orient(a, b, c):
    v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return 0 if abs(v) < 1e-9 else (1 if v > 0 else -1)


def _cross(s, t):
    (p, q), (r, u) = s, t
    return _orient(p, q, r) * _orient(p, q, u) < 0 and _orient(r, u, p) * _orient(r, u, q) < 0


def crossings(view, g):
    """Pairs of drawn PTE / holding edges (no end in common) that cross."""
    segs = drawn_segments(view, g)
    n = 0
    for i, (e, ps) in enumerate(segs):
        for f, qs in segs[i + 1:]:
            if set(e) & set(f):
                continue
            n += any(_cross(s, t) for s in ps for t in qs)
    return n


def layered_minimum(view, g):
    """The fewest PTE -> page crossings of any drawing with the PTEs where
    they are and the pages on one line under them, in any order (exact:
    dynamic programming over the sets of pages placed first, up to
    :data:`MIN_PAGES` pages; None above).  Cached by the PTE order."""
    pos = view.layout.pos
    edges = [(u, v) for u, v, a in g.edges(data=True) if a["kind"] == "pte"]
    pages = sorted({v for _, v in edges}, key=repr)
    if len(pages) > MIN_PAGES:
        return None
    at = {v: j for j, v in enumerate(pages)}
    # c[a][b]: crossings between the edges of pages a and b when a is left of b
    xs = sorted({pos[u][0] for u, _ in edges})
    key = tuple(sorted((xs.index(pos[u][0]), at[v]) for u, v in edges))
    if key not in _MINIMA:
        _MINIMA[key] = _one_line_minimum(key, len(pages))
    return _MINIMA[key]


MIN_PAGES = 18
_MINIMA = {}


def _one_line_minimum(edges, n):
    """min over orders of the pages 0..n-1 of the crossings of ``edges``
    ((rank of the PTE's x, page)): f(S) = min over the last page v of S of
    f(S - v) + the crossings of every page of S - v placed left of v."""
    c = np.zeros((n, n), int)
    for xu, a in edges:
        for xv, b in edges:
            if a != b and xu > xv:
                c[a][b] += 1             # a left of b, a's PTE right of b's: they cross
    full = 1 << n
    # left[v][S] = sum of c[u][v] for u in S
    left = np.zeros((n, full), int)
    for k in range(n):
        left[:, 1 << k:2 << k] = left[:, :1 << k] + c[k][:, None]
    f = np.full(full, np.iinfo(np.int64).max // 2, np.int64)
    f[0] = 0
    bits = [1 << v for v in range(n)]
    for S in range(1, full):
        f[S] = min(f[S ^ b] + left[v][S ^ b] for v, b in enumerate(bits) if S & b)
    return int(f[full - 1])


@pytest.mark.parametrize("preset", ["compact", "lecture"])
def test_mapping_edges_cross_only_where_no_drawing_avoids_it(preset):
    """In every frame of every shipped scenario (large-folio topics included) under every era it runs in, PTE and holding edges cross only in the frames of UNAVOIDABLE, and there no more than any layered drawing must."""
    seen = {}
    for name, sc, eras in FIGURE_CASES:
        for era in eras:
            view, frames = planned_frames(sc, era, preset)
            for i, (g, prev) in enumerate(frames):
                view._edges(g, prev, graph_diff(prev, g) if prev is not None else None)
                n = crossings(view, g)
                if n:
                    low = layered_minimum(view, g)
                    assert low is not None and n <= low, (name, era, i, n, low)
                    if name not in LARGE_TOPICS and name not in dict(COW_LARGE_TOPICS_NAMED):
                        seen[(name, i)] = n
    assert seen == UNAVOIDABLE


@pytest.mark.parametrize("preset", ["compact", "lecture"])
def test_no_edge_runs_under_a_card_it_does_not_touch(preset):
    """No PTE or holding edge, as drawn (one to a large folio ends at its pages' part of the card), passes under a page or holder card it does not connect (faded cards of pages gone this step included), in any frame of any scenario and era it runs in."""
    for name, sc, eras in FIGURE_CASES:
        for era in eras:
            view, frames = planned_frames(sc, era, preset)
            lay = view.layout
            for i, (g, prev) in enumerate(frames):
                view._edges(g, prev, graph_diff(prev, g) if prev is not None else None)
                # the cards drawn: this state's, and those gone this step (drawn faded)
                cards = [n for n, a in g.nodes(data=True) if a["kind"] in ("folio", "holder")]
                cards += [n for n, a in (prev.nodes(data=True) if prev is not None else ())
                          if a["kind"] in ("folio", "holder") and n not in g]
                for (u, v), segs in drawn_segments(view, g):
                    for (x0, y0), (x1, y1) in segs:
                        for c in cards:
                            xc, yc = lay.pos[c]
                            if c in (u, v) or not min(y0, y1) < yc < max(y0, y1):
                                continue
                            x = x0 + (x1 - x0) * (y0 - yc) / (y0 - y1)
                            if (preset, name, i) in UNDER_KNOWN:
                                continue
                            assert abs(x - xc) >= lay.width[c] / 2, (name, era, i, (u, v), c)


#: Frames where an edge still runs under a card, at lecture size: after the
#: huge zero PMD is split, the zero page is mapped by PTEs on both sides of
#: the one new page, and the place that clears the new page's card is taken
#: in its row by the huge zero folio's card of an earlier frame (cards keep
#: one row place for the whole run, even those never on screen together).
UNDER_KNOWN = {("lecture", "huge_zero_partial_munmap", 4), ("lecture", "huge_zero_mprotect", 5)}


def card_overlaps(view, g):
    """Pairs of cards of the state ``g`` drawn in the last frame of
    ``view`` whose boxes (matplotlib's, display pixels) overlap; a card
    gone this step is drawn faded where it was and is not counted (it may
    lie under the cards that replace it)."""
    from mmkit.viz.view import _overlaps
    r = view.canvas.get_renderer()
    shown = [n for n in g if view._cards[n].get_visible()]
    boxes = np.array([_window_boxes(view._cards[n], r).extents for n in shown]).reshape(-1, 4)
    hit = np.triu(_overlaps(boxes, boxes), 1)
    return [(shown[a], shown[b]) for a, b in zip(*np.nonzero(hit))]


@pytest.mark.parametrize("preset", ["compact", "lecture"])
def test_cards_of_large_folio_frames_never_overlap(preset):
    """In every frame of every large-folio topic, in every era it runs in (the huge zero folio and collapse scenarios in their first and last era), no two cards overlap (in display pixels; the base topics are checked with the change notes)."""
    cases = [(n, sc, eras) for n, sc, eras in FIGURE_CASES if n in LARGE_TOPICS]
    cases += [(n, sc, tuple(dict.fromkeys(eras[:1] + eras[-1:]))) for n, sc, eras in COW_LARGE]
    checked = 0
    for name, sc, eras in cases:
        for era in eras:
            for _, _, i, view, g, prev in drawn_frames([(name, sc)], (era,), preset):
                pairs = card_overlaps(view, g)
                assert not pairs, (name, era, i, pairs[:3])
                checked += len(g)
    assert checked > 1000


def _window_boxes(artist, r):
    """Display-space boxes of a Text: its glyphs and, if any, its box patch."""
    boxes = [artist.get_window_extent(r)]
    patch = artist.get_bbox_patch()
    if patch is not None:
        artist.update_bbox_position_size(r)
        boxes.append(patch.get_window_extent(r))
    return Bbox.union(boxes)


def _segment_hits_box(p, q, b):
    """Does the segment p-q (display coordinates) enter box b?"""
    (x0, y0), (x1, y1) = p, q
    lo, hi = 0.0, 1.0
    for d, s, lo_b, hi_b in ((x1 - x0, x0, b.x0, b.x1), (y1 - y0, y0, b.y0, b.y1)):
        if abs(d) < 1e-12:
            if not lo_b <= s <= hi_b:
                return False
            continue
        t0, t1 = (lo_b - s) / d, (hi_b - s) / d
        lo, hi = max(lo, min(t0, t1)), min(hi, max(t0, t1))
    return lo <= hi


def drawn_frames(cases, eras, preset):
    """Yield (name, era, index, view, graph, prev) for every frame drawn as the stepper draws it."""
    from mmkit.viz.export import _frames
    for name, sc in cases:
        for era in eras:
            prev = None
            for pb, view in _frames(sc, era, preset, {}):
                g = pb.graph()
                yield name, era, pb.index, view, g, prev
                prev = g


NOTE_CASES = [("compact", ALL_SCENARIOS, ("5.7", "6.18")), ("lecture", SCENARIOS[:len(TOPICS)], ("6.18",)),
              ("compact-large", COW_LARGE_TOPICS_NAMED, ("6.18",))]


@pytest.mark.parametrize("preset,cases,eras", NOTE_CASES, ids=[c[0] for c in NOTE_CASES])
def test_change_notes_overlap_no_edge_card_or_note(preset, cases, eras):
    """Every change note ("RO→W →pfn 3") is drawn, and overlaps no edge, no card and no other note, and no two cards overlap, measured on matplotlib's text boxes in display coordinates."""
    shown = 0
    preset = preset.split("-")[0]
    for name, era, i, view, g, prev in drawn_frames(cases, eras, preset):
        assert not card_overlaps(view, g), (name, era, i, card_overlaps(view, g)[:3])
        r = view.canvas.get_renderer()
        notes = [t for t in view._note_pool if t.get_visible() and t.get_text()]
        assert len(notes) == len(view.notes) and not view.dropped, (name, era, i, view.dropped)
        cards = [c for c in view._cards.values() if c.get_visible() and c.get_text()]
        card_boxes = [_window_boxes(c, r) for c in cards]
        to_px = view.ax.transData.transform
        segs = [[tuple(to_px(p)) for p in path] for path in view.paths.values()]
        boxes = [_window_boxes(t, r) for t in notes]
        for k, b in enumerate(boxes):
            shown += 1
            where = (name, era, i, notes[k].get_text())
            assert not any(b.overlaps(c) for c in card_boxes), where
            assert not any(b.overlaps(o) for o in boxes[:k]), where
            assert not any(_segment_hits_box(p, q, b) for path in segs for p, q in zip(path, path[1:])), where
    assert shown > 10


def expected_symbols(view, g, prev):
    """The key's symbols for a frame, derived from what the frame drew."""
    from mmkit.viz.style import card_variant, edge_style
    used = set()
    for n, state in view.drawn.items():
        a = g.nodes[n] if n in g else prev.nodes[n]
        v = card_variant(a)
        if a["kind"] in ("pte", "folio") and not (a["kind"] == "folio" and a["zero"]):
            used.add(v)
        if a["kind"] == "folio":
            used.add("folio_zero" if a["zero"] else "counters")
            used |= {"AE"} if a["exclusive"] else set()
            used |= {"pinned"} if a["pincount"] else set()
        if a["kind"] == "holder" and a["longterm"]:
            used.add("LT")
        used |= {"changed"} if state in ("new", "changed") else {"gone"} if state == "gone" else set()
    for u, v, k in view.paths:
        a = g.edges[u, v, k] if g.has_edge(u, v, k) else prev.edges[u, v, k]
        if a["kind"] not in ("mm", "page_table"):      # grey structure lines: the row names explain them
            used.add("line_" + edge_style(a))
        if not g.has_edge(u, v, k):
            used.add("gone")
        elif prev is not None and len(prev) and a["kind"] in ("pte", "hold") and \
                not prev.has_edge(u, v, k) and (u in prev or v in prev):
            used.add("changed")
    return used


@pytest.mark.parametrize("preset", ["compact", "lecture"])
def test_legend_shows_exactly_the_symbols_drawn_at_a_readable_size(preset):
    """Each frame's key lists exactly the symbols the frame draws, one caption each, in text at least 10 px high (compact) or 14 px (lecture), inside the figure."""
    from mmkit.viz.view import LEGEND, _Card
    minimum = {"compact": 10, "lecture": 14}[preset]
    for name, era, i, view, g, prev in drawn_frames(SCENARIOS[:len(TOPICS)], ("5.7", "6.18"), preset):
        where = (name, era, i)
        entries = set(view.legend_entries)
        assert entries <= set(LEGEND), where
        exp = expected_symbols(view, g, prev)
        # a new PTE edge of a node first drawn this step shows as "changed" through its card
        assert entries - {"changed"} == exp - {"changed"}, where
        assert ("changed" in entries) == ("changed" in exp or any(s in ("new", "changed")
                                                                 for s in view.drawn.values())), where
        r = view.canvas.get_renderer()
        texts = [t for t in view.kax.texts if t.get_visible() and t.get_text()
                 and (not isinstance(t, _Card) or getattr(t, "caption", False))]
        captions = [LEGEND[s][3] for s in view.legend_entries]
        assert sorted(t.get_text() for t in texts) == sorted(
            (f"{LEGEND[s][2]} {c}" if LEGEND[s][0] == "text" else c) for s, c in zip(view.legend_entries, captions))
        W, H = view.canvas.get_width_height()
        for t in texts:
            assert t.get_fontsize() * view.figure.dpi / 72 >= minimum, (where, t.get_text())
            b = t.get_window_extent(r)
            assert 0 <= b.x0 and b.x1 <= W and 0 <= b.y0, (where, t.get_text())


def test_step_captions_are_true_for_the_era_drawn():
    """A step's caption is its own text only where the era decides as the reference era does; elsewhere it is the era's own text or the era's trace, and the CVE-2020-29374 step says reuse under 5.7 and 5.8, copy from 5.9."""
    from mmkit.viz.captions import REFERENCE_ERA, VARIANTS, signature, step_text
    from mmkit.viz.export import step_caption
    ref = {}
    for name, sc in ALL_SCENARIOS:
        pb = Playback(sc, REFERENCE_ERA)
        for i in range(len(pb)):
            pb.step()
            ref[name, i] = signature(pb.results[-1], [e for _, evs in pb.logs[-1] for e in evs], REFERENCE_ERA)
    used_variants = set()
    for name, sc in ALL_SCENARIOS:
        for era in ALL_ERAS:
            pb = Playback(sc, era)
            for i in range(len(pb)):
                pb.step()
                events = [e for _, evs in pb.logs[-1] for e in evs]
                text, how = step_text(pb)
                same = signature(pb.results[-1], events, era) == ref[name, i]
                assert (how == "reference") == same, (name, era, i)
                if how == "reference":
                    assert text == sc.steps[i].explain
                elif how == "variant":
                    used_variants.add((name, i + 1, sc.steps[i].name, era))
                    assert text == VARIANTS[name, i + 1, sc.steps[i].name][era]
                else:
                    assert text.startswith(f"In era {era}")
                    for e in events[:4]:
                        if e.decision:
                            assert f"{e.func}: {e.decision}" in text
                assert step_caption(pb).startswith(text[:40])
                if name == "vmsplice_child" and i == 4:            # step 5: the parent writes
                    decisions = [e.decision for e in events if e.func == "do_wp_page"]
                    if era in ("5.7", "5.8"):
                        assert "reuse" in decisions and "reuses" in text and "copies" not in text
                    else:
                        assert "wp_page_copy" in decisions and "copies" in text
    assert used_variants == {(n, i, s, e) for (n, i, s), v in VARIANTS.items() for e in v}
