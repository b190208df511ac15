"""The large-folio teaching (issue 12): notebook 09's claims, the ``folio`` exercise kind and the
folio drawing."""

import random
from collections import Counter

import pytest

from mmkit import Kernel, era
from mmkit.exercises import KINDS, generate
from mmkit.exercises.folio import FOLIO_MISCONCEPTIONS, FolioBuilder, FolioPart, _fpart
from mmkit.exercises.kinds import _fault
from mmkit.exercises.program import Program
from mmkit.exercises.question import Question
from mmkit.viz import Playback
from mmkit.viz.folio import GROUP_CELLS, draw_folio, folio_view


# -- notebook 09's claims, computed -----------------------------------------------------------------
def _half_shared(page_mapcount):
    k = Kernel(era="6.18", page_mapcount=page_mapcount)
    p = k.spawn("P")
    a = p.mmap(512)
    p.madvise(a, 512, "hugepage")
    p.write(a, b"x")
    c = p.fork("C")
    c.munmap(a + 256 * 4096, 256)
    return [k.page(p, a + i * 4096) for i in range(512)]


def test_no_page_mapcount_answers_as_notebook_09_says():
    """A half-shared THP: kpagecount 2/1 with per-page mapcounts, the average 2 everywhere without;
    PM_MMAP_EXCLUSIVE lost for P's own half; P's PSS 1536 KiB vs 1024 KiB."""
    exact, avg = _half_shared(True), _half_shared(False)
    assert (exact[0].mapcount, exact[300].mapcount) == (2, 1)
    assert {i.mapcount for i in avg} == {2}
    assert exact[300].mapcount == 1 and avg[300].maybe_mapped_shared is True
    assert sum(4096 / i.mapcount for i in exact) / 1024 == 1536
    assert sum(4096 / i.mapcount for i in avg) / 1024 == 1024


def _last_write(scenario, era_, upto):
    pb = Playback(scenario, era=era_)
    pb.goto(upto - 1)
    who = pb.ns.kk if scenario == "thp_fork_cow" else pb.ns.j
    before = pb.kernel.page(pb.ns.p, who)
    pb.step()
    after = pb.kernel.page(pb.ns.p, who)
    return "reuse" if after.pfn == before.pfn else "copy", after


def test_thp_reuse_by_era_as_notebook_09_says():
    """The parent's last write to page K of its PTE-mapped THP: 5.8 reuses (mapcount rule), 5.9 to 6.2
    copy (refcount 511), 6.18 reuses via MM IDs and sets AE on K only."""
    assert _last_write("thp_fork_cow", "5.8", 6)[0] == "reuse"
    for e in ("5.9", "5.19", "6.2"):
        assert _last_write("thp_fork_cow", e, 6)[0] == "copy", e
    what, info = _last_write("thp_fork_cow", "6.18", 6)
    assert what == "reuse" and info.exclusive and info.order == 9 and info.refcount == 511


def test_mthp_reuse_needs_mm_ids():
    """The mTHP scenario's last write reuses under 6.18 (r16 m1) and copies with the pre-6.15 rule (never reuse a page of a large folio)."""
    what, info = _last_write("mthp_fork_cow", "6.18", 5)
    assert what == "reuse" and (info.refcount, info.mapcount) == (16, 1)
    older = era("6.18").replace(name="older", large_reuse="never", mm_id=False)
    assert _last_write("mthp_fork_cow", older, 5)[0] == "copy"


# -- the folio exercise kind ------------------------------------------------------------------------
def test_folio_kind_is_registered_for_notebook_09():
    """generate("folio") works and the kind belongs to notebook 09."""
    assert KINDS["folio"].notebook == "09-large-folios"
    q = generate("folio", 4)
    assert q.params["kind"] == "folio" and q.evaluate(q.answer_key())[0] is True


def test_folio_seeds_draw_both_sizes_and_every_ask():
    """Seeds 1-30 give at least 28 programs, THPs and mTHPs both, and the four asks."""
    qs = [generate("folio", s) for s in range(1, 31)]
    assert len({q.source.code() for q in qs}) >= 28
    code = "\n".join(q.source.code() for q in qs)
    assert "P.mmap(512)" in code and "P.mmap(16)" in code
    texts = {q.text.split(" ")[0] for q in qs}
    assert any("PMD" in q.text or "how does P map" in q.text for q in qs)
    assert any("write fault" in q.text for q in qs)
    assert any("counters of the large folio" in q.text for q in qs)
    assert any("maybe mapped shared" in q.text for q in qs), texts


def test_folio_answers_are_spread():
    """Over 300 seeds no part's most common answer covers more than 80% of the times it is asked."""
    seen = {}
    for seed in range(300):
        q = generate("folio", seed)
        key = q.answer_key()
        vals = key if len(q.parts) > 1 else (key,)
        for p, v in zip(q.parts, vals):
            seen.setdefault(p.name, Counter())[v] += 1
    for name, c in seen.items():
        total = sum(c.values())
        if total >= 10:
            assert c.most_common(1)[0][1] / total <= 0.8, (name, c)


def _q(lines, parts, era_="6.18"):
    b = FolioBuilder(random.Random(0), era_)
    for ln in lines:
        if ln[0] == "write":
            b.write(*ln[1:])
        else:
            b.do(*ln)
    ps = [mk(b) for mk in parts]
    return Question(Program(b.ops), ps, {"kind": "t", "seed": 0, "era": era_}, "t")


THP = [("thp_enabled", "always"), ("spawn", "P"), ("mmap_n", "P", "a", 512), ("write", "P")]
MTHP = [("thp_set", "64kB", "always"), ("spawn", "P"), ("mmap_n", "P", "a", 16), ("write", "P")]


def _msg(q, answer):
    ok, msgs = q.evaluate(answer)
    return ok, " ".join(msgs)


@pytest.mark.parametrize("key, lines, part, wrong, era_", [
    ("pmd_counts_pages", THP + [("fork", "P", "C")], lambda b: _fpart("P", "large_mapcount"), 1024, "6.18"),
    ("mapcount_per_process", MTHP + [("fork", "P", "C")], lambda b: _fpart("P", "large_mapcount"), 2, "6.18"),
    ("entire_counts_ptes", MTHP, lambda b: _fpart("P", "entire_mapcount"), 1, "6.18"),
    ("thp_copied_whole", THP + [("fork", "P", "C"), ("write", "C", "a", 1)], lambda b: _fpart("C", "order", 1), 9,
     "6.18"),
    ("thp_split_in_old_era", THP + [("fork", "P", "C"), ("write", "C", "a", 1)], lambda b: _fpart("C", "order", 1), 0,
     "5.7"),
    ("split_keeps_pmd", THP + [("mprotect", "P", "a", "r"), ("mprotect", "P", "a", "rw")],
     lambda b: _fpart("P", "pmd_mapped"), True, "6.18"),
    ("maybe_shared_per_page", MTHP + [("fork", "P", "C"), ("munmap_n", "C", "a", 8, 8)],
     lambda b: _fpart("P", "maybe_shared", 12), False, "6.18"),
    ("pte_mapped_never_reused", MTHP + [("fork", "P", "C"), ("exit", "C"), ("write", "P", "a", 1)],
     lambda b: _fault(b, -1, "P"), "copy", "6.18"),
    ("reuse_while_folio_shared", MTHP + [("fork", "P", "C"), ("write", "P", "a", 1)],
     lambda b: _fault(b, -1, "P"), "reuse", "6.18"),
])
def test_folio_misconceptions_fit_their_answers(key, lines, part, wrong, era_):
    """The wrong answer a large-folio misconception predicts is named by it, never revealing the answer;
    the right answer passes."""
    q = _q(lines, [part], era_)
    truth = q.answer_key()
    assert truth != wrong
    assert q.evaluate(truth)[0] is True
    ok, text = _msg(q, wrong)
    assert ok is False and FOLIO_MISCONCEPTIONS[key].title in text, text


def test_large_pin_counts_one():
    """A refcount answer that weighs a pin on a large folio 1024 is told about _pincount."""
    q = _q(MTHP + [("pin", "P", "a", "pin", True, True)],
           [lambda b: __import__("mmkit.exercises.kinds", fromlist=["_counter"])._counter("P", "a", "refcount")])
    truth = q.answer_key()
    ok, text = _msg(q, truth + 1023)
    assert ok is False and FOLIO_MISCONCEPTIONS["large_pin_bias"].title in text


def test_folio_parts_read_their_answers():
    """Large-folio parts read ints and booleans in the usual spellings and refuse the rest."""
    p = FolioPart("x", "large_mapcount", lambda run: 1)
    assert p.normalize("512") == 512 and p.form == "an int"
    with pytest.raises(ValueError):
        p.normalize(True)
    b = FolioPart("y", "maybe_shared", lambda run: True)
    assert b.normalize("yes") is True and b.normalize(0) is False


# -- the folio drawing ---------------------------------------------------------------------------------
def _forked_thp(copies):
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(512)
    p.madvise(a, 512, "hugepage")
    p.write(a, b"x")
    c = p.fork("C")
    for i in copies:
        c.write(a + i * 4096, b"y")
    return k, p, c, a


def test_folio_view_lanes_follow_the_page_tables():
    """Each lane says how its process maps each page: read-only PMD, PTE, own copy."""
    k, p, c, a = _forked_thp([5])
    v = folio_view(k, {"P": (p, a), "C": (c, a + 5 * 4096)})
    assert v.nr == 512 and v.order == 9 and v.head_pfn % 512 == 0
    assert set(v.lanes["P"]) == {"pmd_ro"}
    assert v.lanes["C"][5] == "copy" and v.lanes["C"][4] == "pte_ro"
    assert v.mapcount[5] == 1 and v.mapcount[4] == 2


def test_512_pages_stay_readable():
    """A single copied page is a cell of its own, at least min_frac wide; many runs group into at
    most GROUP_CELLS cells, mixed groups marked."""
    from mmkit.viz.folio import _widths
    k, p, c, a = _forked_thp([5])
    v = folio_view(k, {"P": (p, a), "C": (c, a)})
    runs = v.runs()
    assert [(r.start, r.stop) for r in runs] == [(0, 5), (5, 6), (6, 512)]
    assert min(_widths(runs, 512, 0.04)) >= 0.035
    k, p, c, a = _forked_thp(range(0, 512, 9))
    runs = folio_view(k, {"P": (p, a), "C": (c, a)}).runs()
    assert len(runs) <= GROUP_CELLS and any(r.mixed for r in runs)
    assert sum(r.n for r in runs) == 512


def test_draw_folio_at_notebook_and_lecture_size():
    """The drawing renders at both presets, with the key and the folio counters in it."""
    k, p, c, a = _forked_thp([1])
    v = folio_view(k, {"P": (p, a), "C": (c, a)})
    for preset in ("compact", "lecture"):
        fig = draw_folio(v, title="t", preset=preset)
        texts = " ".join(t.get_text() for t in fig.axes[0].texts)
        assert "large_mapcount" in texts and "key:" in texts and "read-only PMD" in texts
    with pytest.raises(Exception):
        q = k.spawn("Q")
        b = q.mmap(1)
        q.write(b, b"z")
        folio_view(k, {"Q": (q, b)})


def test_rmap_graph_hook_helpers():
    """large_node_attrs() gives one card's attributes for a whole large folio (styled like an anon
    folio, with its strip), and cell_of() places an edge to page i on that page's cell."""
    from mmkit.viz.folio import cell_of, large_node_attrs
    from mmkit.viz.style import card_variant
    k, p, c, a = _forked_thp([3])
    lf = p.mm.pte(a).folio.folio
    at = large_node_attrs(lf)
    assert card_variant(at) == "folio_anon" and at["large"] and at["nr"] == 512
    assert [(r.start, r.stop) for r in at["runs"]] == [(0, 3), (3, 4), (4, 512)]
    assert "large 512 entire 1" in at["label"] and "0–2 m2 · 3 m1 · 4–511 m2" in at["label"]
    xs = [cell_of(at["runs"], i, 0.0, 1.0, 512) for i in (0, 3, 4, 511)]
    assert xs == sorted(xs) and xs[1] != xs[2] and cell_of(at["runs"], 100, 0.0, 1.0, 512) == xs[3]


def test_rmap_graph_draws_a_large_folio_as_one_node():
    """In the rmap graph a THP is one folio node whose label lists its pages' runs; the parent's PMD is
    one 'PMD' entry, the child's split PMD runs of PTEs, all pointing at that node; a copy is its own node."""
    from mmkit.viz import rmap_graph
    k, p, c, a = _forked_thp([3])
    g = rmap_graph(k)
    head = k.page(p, a).pfn
    large = [n for n, d in g.nodes(data=True) if d.get("large")]
    assert large == [("folio", head)]
    assert "0–2 m2 · 3 m1 · 4–511 m2" in g.nodes[("folio", head)]["label"]
    ptes = {n: d for n, d in g.nodes(data=True) if d["kind"] == "pte"}
    pmd = [n for n, d in ptes.items() if d.get("pmd")]
    assert len(pmd) == 1 and g.nodes[pmd[0]]["label"] == "PMD\nRO" and g.has_edge(pmd[0], ("folio", head), "pte")
    child = [n for n, d in ptes.items() if d["pid"] == c.pid]
    assert sum(1 for n in child if g.has_edge(n, ("folio", head), "pte")) == 2      # pages 0-2 and 4-511
    assert ("folio", k.page(c, a + 3 * 4096).pfn) in g


def test_a_folio_drawing_shows_in_a_notebook_without_pyplot():
    """draw_folio() returns a figure IPython renders as a PNG, so 09's drawings appear as pictures, not '<Figure ...>'."""
    from IPython.core.formatters import PNGFormatter
    from mmkit import Kernel
    from mmkit.viz.folio import draw_folio, folio_view
    k = Kernel()
    k.thp.enabled = "always"
    p = k.spawn("P")
    a = p.mmap(512)
    p.write(a, b"x")
    png = PNGFormatter()(draw_folio(folio_view(k, {"P": (p, a)}), title="P's THP"))
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
