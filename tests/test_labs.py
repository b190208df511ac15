"""The labs: the era x cow.c table, the attack finder, the mapcount trackers and their costs."""

import doctest
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from mmkit import Kernel
from mmkit.labs import attack, history, large, mapcount
from mmkit.labs.attack import Op, find_attack
from mmkit.labs.mapcount import MapcountLab, run_workload

PAGE = 4096
ROOT = Path(__file__).resolve().parent.parent

# -- Lab A: the era x case table -------------------------------------------------------

# The expected table, written down from kernel-mm-facts.md 8.12 ("Bugs each era
# shows", and the era rows it follows from), not read back from the model.
#   5.7: reuse iff mapcount == 1 -> every vmsplice case leaks; a pinned page
#        shared at fork is copied away from its pin on the next write; an R/O
#        pin of a shared page goes stale (mapcount 2 -> copy).  Exclusive and
#        previously-shared pages have mapcount 1 and are reused: pass.
#   5.8: read GUP breaks COW first -> vmsplice-in-child and R/O pins pass, but
#        "vmsplice before fork" still leaks and fork still shares pinned pages.
#   5.9: refcount-based reuse and early COW of pinned pages at fork -> the
#        vmsplice and fork cases pass; R/W pins lose coherence after an
#        mprotect(R/O) round trip; R/O pins go stale on shared,
#        previously-shared and R/O-exclusive pages.
#   5.19 and later: all anonymous cases pass.
EXPECTED_GRID = """
Basic COW after fork()                                    P P P P P P
Basic COW after fork() with mprotect() optimization       P P P P P P
vmsplice() + unmap in child                               F P P P P P
vmsplice() + unmap in child with mprotect() optimization  F P P P P P
vmsplice() before fork(), unmap in parent after fork()    F F P P P P
vmsplice() + unmap in parent after fork()                 F P P P P P
R/O-mapping a page registered as iouring fixed buffer     P P F P P P
fork() with an iouring fixed buffer                       F F P P P P
R/O GUP pin on R/O-mapped shared page                     F P F P P P
R/O GUP-fast pin on R/O-mapped shared page                F P F P P P
R/O GUP pin on R/O-mapped previously-shared page          P P F P P P
R/O GUP-fast pin on R/O-mapped previously-shared page     P P F P P P
R/O GUP pin on R/O-mapped exclusive page                  P P F P P P
R/O GUP-fast pin on R/O-mapped exclusive page             P P F P P P
"""
ERAS = ["5.7", "5.8", "5.9", "5.19", "6.2", "6.18"]


def _expected():
    out = {}
    for line in EXPECTED_GRID.strip().splitlines():
        name, cells = line[:57].rstrip(), line[57:].split()
        out[name] = {e: c == "P" for e, c in zip(ERAS, cells)}
    return out


def test_cow_table_is_the_history():
    """The lab's era x cow.c table is exactly the history of the COW fixes."""
    t = history.cow_table()
    assert t.eras == ERAS
    assert t.passed == _expected()


def test_table_changes_name_the_fixes():
    """Between neighbouring eras the table shows the 5.8, 5.9 and 5.19 fixes and the 5.9 breakage."""
    ch = set(history.cow_table().changes())
    assert ("vmsplice() + unmap in child", "5.7", "5.8", "fixed") in ch
    assert ("vmsplice() before fork(), unmap in parent after fork()", "5.8", "5.9", "fixed") in ch
    assert ("R/O GUP pin on R/O-mapped shared page", "5.8", "5.9", "broken") in ch
    assert ("R/O GUP pin on R/O-mapped shared page", "5.9", "5.19", "fixed") in ch
    assert not [c for c in ch if c[1] in ("5.19", "6.2")]


def test_why_names_the_deciding_rule():
    """why() shows the mapcount reuse under 5.7 and the refcount copy under 5.9."""
    old = history.why("vmsplice() + unmap in child", "5.7")
    new = history.why("vmsplice() + unmap in child", "5.9")
    assert any("reuse_swap_page" in x and "mapcount 1" in x and x.endswith("reuse") for x in old)
    # 5.9's do_wp_page() tested page_count() itself; wp_can_reuse_anon_folio() is its later name
    assert any(("wp_can_reuse_anon_folio" in x or "do_wp_page" in x) and "refcount 2 > 1" in x for x in new)
    pin = history.why("R/O GUP pin on R/O-mapped shared page", "5.19")
    assert any("gup_must_unshare" in x for x in pin)


def test_walkthrough_agrees_with_table():
    """A cell's walkthrough passes exactly when the table says so, and shows every step."""
    t = history.cow_table()
    for case in ("vmsplice() + unmap in child", "R/O GUP pin on R/O-mapped exclusive page"):
        for e in ERAS:
            w = history.walkthrough(case, e)
            assert w.passed == t.passed[case][e]
            assert len(w.steps) == len(history.find_case(case))
    assert "FAIL" in history.walkthrough("vmsplice() + unmap in child", "5.7")._repr_html_()


def test_open_cell_gives_stepper_or_walkthrough():
    """open_cell() returns the stepper when it exists, else the static walkthrough."""
    cell = history.open_cell("vmsplice() + unmap in child", "5.7")
    if history.stepper_available():
        from mmkit.widgets import Stepper
        assert isinstance(cell, Stepper)
    else:
        assert isinstance(cell, history.Walkthrough) and not cell.passed


def test_compare_shows_both_eras(monkeypatch):
    """compare() runs a case to its end under both eras, with or without the stepper widget."""
    case = "R/O GUP pin on R/O-mapped shared page"
    if history.stepper_available():
        cmp = history.compare(case, ("5.9", "5.19"))
        assert [s.results[-1].outcome for s in cmp.steppers] == [False, True]
    monkeypatch.setattr(history, "stepper_available", lambda: False)
    static = history.compare(case, ("5.9", "5.19"))
    assert [w.passed for w in static] == [False, True]


def test_explorer_follows_the_chosen_cell():
    """The explorer widget's status follows the chosen case and era."""
    box = history.explorer(case="vmsplice() + unmap in child", era="5.7")
    assert box.status.value == "vmsplice() + unmap in child under 5.7: fail"
    box.era.value = "5.9"
    assert box.status.value == "vmsplice() + unmap in child under 5.9: pass"


def test_dirty_cow_pieces_are_refused():
    """Without FOLL_FORCE the model refuses every write to a read-only private file mapping."""
    got = dict(history.dirty_cow_probe())
    assert got["store to it"].startswith("SIGSEGV")
    assert got["write GUP of it (FOLL_WRITE, no FOLL_FORCE)"].startswith("EFAULT")
    assert got["the file's contents afterwards"] == "reads 'root:x:0:0'"
    assert all("?" not in v for v in got.values())      # every outcome in words, MADV_DONTNEED included


# -- Lab A: the attack finder ------------------------------------------------------------------

def test_finds_the_vmsplice_leak_under_5_7():
    """Under 5.7 the shortest leak is cow.c's vmsplice() + unmap in child, 4 operations."""
    r = find_attack("5.7", "no_leak", max_ops=5)
    cx = r.first
    assert cx.ops == (Op("fork"), Op("vmsplice", "C"), Op("munmap", "C"), Op("write", "P"))
    assert (cx.reader, cx.what) == ("C", "pipe")
    assert cx.cow_twin == "vmsplice() + unmap in child"
    assert {c.cow_twin for c in r.found} >= {"vmsplice() + unmap in parent after fork()",
                                             "vmsplice() before fork(), unmap in parent after fork()"}
    assert all(len(c.ops) == 4 for c in r.found)


def test_finds_vmsplice_before_fork_under_5_8():
    """Under 5.8 the only vmsplice leak left is the one taken before fork."""
    twins = {c.cow_twin for c in find_attack("5.8", "no_leak").found} - {None}
    assert twins == {"vmsplice() before fork(), unmap in parent after fork()"}


def test_finds_a_stale_ro_pin_under_5_9():
    """Under 5.9 a pin-coherence search first finds a stale read-only pin, 3 operations."""
    r = find_attack("5.9", "pin_coherent", max_ops=5)
    cx = r.first
    assert cx.what == "pin" and "stale" in cx.violation
    assert [o.verb for o in cx.ops] == ["fork", "pin_ro", "write"]
    assert {c.cow_twin for c in r.found} >= {"R/O GUP pin on R/O-mapped shared page",
                                             "R/O GUP pin on R/O-mapped exclusive page"}


def test_no_leak_under_5_9_within_four_ops():
    """5.9's refcount rule leaks nothing within four operations."""
    assert find_attack("5.9", "no_leak", max_ops=4).found == []


@pytest.mark.parametrize("prop", list(attack.PROPERTIES))
def test_finds_nothing_under_6_18_within_budget(prop):
    """Under 6.18 every one of the 22175 sequences of up to 5 operations keeps the property."""
    r = find_attack("6.18", prop, max_ops=5)
    assert r.found == [] and r.first is None
    assert r.sequences == 22175
    assert r.by_length == {1: 7, 2: 43, 3: 308, 4: 2449, 5: 19368}


def test_counterexample_steps_back_in_the_stepper():
    """Stepping back and forth through a counterexample in the stepper gives the same verdict."""
    pytest.importorskip("mmkit.widgets")
    from mmkit.widgets import Stepper
    st = Stepper(find_attack("5.7", "no_leak", max_ops=4).first.scenario(), era="5.7")
    st.goto(len(st.scenario))
    assert st.results[-1].outcome is False
    st.goto(2)
    st.goto(len(st.scenario))
    assert st.results[-1].outcome is False and st.results[-2].outcome == b"P:01"


def test_counterexample_is_a_runnable_scenario():
    """A counterexample replays as a Scenario that fails under its era and passes under 6.18."""
    sc = find_attack("5.7", "no_leak", max_ops=4).first.scenario()
    assert [s.name for s in sc.steps][-2:] == ["C reads its pipe", "check"]
    old = sc.run(Kernel(era="5.7"))
    assert old[-1].outcome is False and old[-2].outcome == b"P:01"
    new = sc.run(Kernel(era="6.18"))
    assert new[-1].outcome is True and new[-2].outcome == b"P:00"


def test_run_ops_reads_everything():
    """run_ops() replays a sequence and reports what every process reads, with the violation if any."""
    ops = (Op("fork"), Op("vmsplice", "C"), Op("munmap", "C"), Op("write", "P"))
    seen = {(a, what): (value, bad) for a, what, value, bad in attack.run_ops(ops, "no_leak", era="5.7")}
    assert seen[("P", "page")] == (b"P:01", None)
    assert seen[("C", "pipe")][0] == b"P:01" and "never had that data" in seen[("C", "pipe")][1]
    fixed = {(a, what): (value, bad) for a, what, value, bad in attack.run_ops(ops, "no_leak", era="6.18")}
    assert fixed[("C", "pipe")] == (b"P:00", None)


def test_replay_refuses_impossible_sequences():
    """A sequence whose operation is not possible at its place is refused."""
    from mmkit import InvalidArgument
    with pytest.raises(InvalidArgument):
        attack.replay((Op("write", "C"),))


def test_bad_property_is_refused():
    """find_attack() names the properties it knows."""
    from mmkit import InvalidArgument
    with pytest.raises(InvalidArgument, match="no_leak"):
        find_attack("5.7", "secure")


def _hyp(max_examples, phases=tuple(Phase)):
    return settings(max_examples=max_examples, stateful_step_count=10, derandomize=True, deadline=None,
                    database=None, phases=phases, suppress_health_check=list(HealthCheck))


def test_hypothesis_machine_finds_nothing_under_6_18():
    """The Hypothesis state machine over the same alphabet finds no leak under 6.18."""
    run_state_machine_as_test(attack.attack_machine("6.18", "no_leak"), settings=_hyp(100))


def test_hypothesis_machine_finds_the_5_9_stale_pin():
    """The Hypothesis state machine also finds a stale pin under 5.9."""
    with pytest.raises(AssertionError, match="stale"):
        run_state_machine_as_test(attack.attack_machine("5.9", "pin_coherent"),
                                  settings=_hyp(500, phases=(Phase.generate,)))


# -- Lab B: mapcount trackers and their costs ---------------------------------------------------

def _fresh(era="6.18"):
    k = Kernel(era=era, trace="off", check=False)
    return k, MapcountLab(k)


def test_atomics_at_fault_fork_exit_hand_computed():
    """Two written pages, a fork and the child's exit cost each mode what the rules say."""
    k, lab = _fresh()
    with lab.phase("fault"):
        p = k.spawn("p")
        a = p.mmap(2)
        p.write(a, b"x")
        p.write(a + PAGE, b"y")
    with lab.phase("fork"):
        c = p.fork("c")
    with lab.phase("exit"):
        c.exit()
    want = {"exact": (2, 2, 2), "folio": (2, 2, 2), "three_state": (2, 2, 0), "ever_mapped": (2, 0, 0),
            "none": (0, 0, 0)}
    for mode, (fault, fork, exit_) in want.items():
        at = lab.costs[mode].atomics
        assert (at["fault"], at["fork"], at["exit"]) == (fault, fork, exit_), mode
    assert lab.events == {"fault": 2, "fork": 2, "exit": 2}


def test_exclusive_question_hand_computed():
    """After fork and exit only exact knows the page is mapped once; the others walk (or guess wrong)."""
    k, lab = _fresh()
    p = k.spawn("p")
    a = p.mmap(1)
    p.write(a, b"x")
    c = p.fork("c")
    c.exit()
    assert lab.ask_exclusive(p.mm.pte(a).folio, "pagemap") is True
    for mode in ("exact", "folio"):
        cost = lab.costs[mode]
        assert (cost.total("walks"), cost.total("wrong"), cost.answered["pagemap"]) == (0, 0, 1)
    for mode in ("three_state", "ever_mapped", "none"):
        cost = lab.costs[mode]
        assert (cost.walks["pagemap"], cost.walk_steps["pagemap"], cost.wrong["pagemap"],
                cost.wasted["pagemap"]) == (1, 1, 1, 0), mode
    # the walk taught three-state the truth: one more write, and the next answer is free
    assert lab.costs["three_state"].atomics["setup"] == 1 + 1 + 1
    lab.ask_exclusive(p.mm.pte(a).folio, "pagemap")
    assert lab.costs["three_state"].walks["pagemap"] == 1
    assert lab.costs["none"].walks["pagemap"] == 2


def test_truncation_questions_hand_computed():
    """After the zap, only the trackers that lost information walk, and those walks find nothing."""
    from mmkit.memory import unmap_mapping_range
    k, lab = _fresh()
    f = k.open("f", 3)
    for i in range(3):
        f.write(i * PAGE, b"d")
    p, q = k.spawn("p"), k.spawn("q")
    # one-page VMAs, so that fault-around maps nothing but the page touched
    p.read(p.mmap(1, prot="r", shared=True, file=f, offset=0), 1)   # page 0: p and q -> "many"
    q.read(q.mmap(1, prot="r", shared=True, file=f, offset=0), 1)
    q.read(q.mmap(1, prot="r", shared=True, file=f, offset=1), 1)   # page 1: q only
    q.exit()                                                        # page 2: never mapped
    fo = k.files[f.id]
    unmap_mapping_range(k, fo, 0, even_cows=True)
    for i in range(3):
        lab.ask_mapped(fo.pages[i], "truncate")
    got = {m: (lab.costs[m].walks["truncate"], lab.costs[m].walk_steps["truncate"],
               lab.costs[m].wasted["truncate"]) for m in mapcount.MODES}
    # walks, VMA steps, wasted walks: only p's VMA (pgoff 0, one page) is left in
    # i_mmap, so a walk for page 1 or 2 takes the i_mmap lock but visits no VMA
    # (the interval tree holds none covering those indexes)
    assert got == {"exact": (0, 0, 0), "folio": (0, 0, 0), "three_state": (1, 1, 1),
                   "ever_mapped": (2, 1, 2), "none": (3, 1, 3)}


def test_known_count_stops_the_walk_early():
    """A parent's exclusive page in an anon_vma linked to 3 children: a known count walks 1 VMA, no count 4."""
    k, lab = _fresh()
    p = k.spawn("p")
    a = p.mmap(1)
    p.write(a, b"x")
    kids = [p.fork(f"c{i}") for i in range(3)]
    p.write(a, b"y")                    # COW: the parent's new page lives in the root anon_vma
    lab.ask_mapped(p.mm.pte(a).folio, "migrate")
    steps = {m: lab.costs[m].walk_steps["migrate"] for m in mapcount.MODES}
    assert steps == {"exact": 1, "folio": 1, "three_state": 1, "ever_mapped": 4, "none": 4}
    assert all(lab.costs[m].wasted["migrate"] == 0 for m in mapcount.MODES)
    assert len(kids) == 3


def test_observer_is_chained_and_given_back():
    """The lab keeps calling an observer that was already installed, and restores it on detach."""
    k = Kernel(trace="off", check=False)
    seen = []
    k.rmap_observer = lambda ev, folio, vma: seen.append(ev)
    lab = MapcountLab(k)
    p = k.spawn("p")
    p.write(p.mmap(1), b"x")
    assert seen == ["map"] and lab.costs["exact"].total("atomics") == 1
    lab.detach()
    assert k.rmap_observer is not None and k.rmap_observer is not lab._observe


@pytest.mark.parametrize("name", list(mapcount.WORKLOADS))
def test_workloads_small(name):
    """Each workload runs; definite answers are never wrong; exact never wastes a walk or guesses."""
    r = run_workload(name, 40)
    ex = r.costs["exact"]
    assert ex.total("wasted") == 0 and ex.total("wrong") == 0
    assert r.row("folio") == r.row("exact")
    assert r.costs["none"].total("atomics") == 0
    assert r.costs["none"].total("walks") == sum(r.questions[s] for s in r.questions) - \
        r.costs["none"].total("answered")
    assert sum(r.questions.values()) > 0


def test_workload_trends():
    """Bigger workloads cost more: the none-mode walks grow with the page cache, exact's stay zero."""
    small, big = run_workload("truncate", 500), run_workload("truncate", 2000)
    assert small.costs["none"].total("wasted") == 500 and big.costs["none"].total("wasted") == 2000
    assert small.costs["exact"].total("walks") == big.costs["exact"].total("walks") == 0
    rows = mapcount.sweep("long-lived", [20, 40], metric="walk_steps")
    assert rows["none"][1] > rows["none"][0] and rows["exact"] == [16, 16]


def test_conclusions_come_from_the_numbers():
    """The conclusions quote the measured counts."""
    res = {n: run_workload(n, 100) for n in ("fork-heavy", "truncate")}
    text = "\n".join(mapcount.conclusions(res))
    assert f"cost {sum(r.costs['exact'].total('atomics') for r in res.values())} counter updates" in text
    assert f"without any tracking {res['truncate'].costs['none'].total('wasted')} rmap walks found nothing" in text
    assert "same counter" in text


def test_plots_draw_one_panel_per_workload():
    """plot_costs() draws one visible panel per workload; plot_sweep() one line per mode."""
    res = {n: run_workload(n, 30) for n in mapcount.WORKLOADS}
    fig = mapcount.plot_costs(res)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4
    fig2 = mapcount.plot_sweep("truncate", [10, 20], mapcount.sweep("truncate", [10, 20]))
    labelled = [ln for ln in fig2.axes[0].lines if not ln.get_label().startswith("_")]
    assert len(labelled) == len(mapcount.MODES)


def test_plots_say_what_hides_and_what_is_zero():
    """A line that coincides with another is named "hides under it" in the legend, a measured zero is
    marked (hollow marker / a "0" at the bar's foot), and the legend sits outside the axes."""
    rows = mapcount.sweep("truncate", [100, 200], "wasted")
    fig = mapcount.plot_sweep("truncate", [100, 200], rows, "wasted")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("folio" in t and "hides under it" in t for t in labels)
    assert "measured zero" in ax.get_legend().get_title().get_text()
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1
    res = {n: run_workload(n, 30) for n in ("truncate", "migrate")}
    fig2 = mapcount.plot_costs(res)
    assert any(t.get_text() == "0" for a in fig2.axes for t in a.texts)
    assert fig2.legends and "measured zero" in fig2.legends[0].get_title().get_text()


def test_bad_workload_is_refused():
    """run_workload() names the workloads it knows and refuses sizes below 1."""
    from mmkit import InvalidArgument
    with pytest.raises(InvalidArgument, match="fork-heavy"):
        run_workload("compile")
    with pytest.raises(InvalidArgument):
        run_workload("truncate", 0)


@pytest.mark.parametrize("mod", [attack, history, mapcount, large])
def test_lab_docstring_examples(mod):
    """Every docstring example of the lab modules passes."""
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# -- the notebooks --------------------------------------------------------------------------------

LAB_NOTEBOOKS = ["07-history-lab.ipynb", "08-mapcount-lab.ipynb"]


@pytest.mark.parametrize("name", LAB_NOTEBOOKS)
def test_lab_notebook_is_stored_clean(name):
    """The lab notebooks are stored without outputs and every cell has slide metadata."""
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    for cell in nb["cells"]:
        assert cell["metadata"].get("slideshow", {}).get("slide_type") in ("slide", "subslide", "fragment", "-",
                                                                           "skip", "notes")
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.fixture(scope="module")
def lab_runs(tmp_path_factory):
    """Both lab notebooks executed once, each a copy in a temporary directory: {name: (nb, seconds)}."""
    import time

    import nbformat
    from nbclient import NotebookClient
    tmp = tmp_path_factory.mktemp("labs")
    out = {}
    for name in LAB_NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, tmp / name)
        nb = nbformat.read(tmp / name, as_version=4)
        t = time.perf_counter()
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}).execute()
        out[name] = (nb, time.perf_counter() - t)
    return out


def _outputs(nb, kind="text/plain"):
    """Every output of ``kind``, printed text (stdout) included."""
    return "\n".join(str(o.get("data", {}).get(kind, "")) + (o.get("text", "") if kind == "text/plain" else "")
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _lab_cells(name):
    import nbformat
    return nbformat.read(ROOT / "notebooks" / name, as_version=4).cells


def _first(cells, needle):
    return next(i for i, c in enumerate(cells) if c.cell_type == "code" and needle in c.source)


@pytest.mark.parametrize("name", LAB_NOTEBOOKS)
def test_lab_opens_with_objectives_and_code_early(name):
    """Each lab opens with objectives, prerequisites, time, core/optional sections and the glossary link,
    has code within its first three cells, folds its long theory into <details> cells, and cites the
    kernel instead of the facts file."""
    import re
    cells = _lab_cells(name)
    head = cells[0].source
    for word in ("You will", "Prerequisites", "Time", "Core", "Optional", "glossary.ipynb"):
        assert word in head, (name, word)
    assert any(c.cell_type == "code" for c in cells[1:3])
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "<details>" in text
    assert not re.search(r"facts\s+\d", text)
    # a bare "(x.y)" is only ever a kernel version
    for m in re.findall(r"\((\d+\.\d+)[^)]*\)", text):
        assert m in ("5.7", "5.8", "5.9", "5.18", "5.19", "6.0", "6.2", "6.15", "6.18"), (name, m)


def test_history_lab_predictions_come_first():
    """In 07 every prediction task is asked before the cell that shows its answer, and the own-attack
    tasks come before the attack finder runs."""
    cells = _lab_cells("07-history-lab.ipynb")
    assert _first(cells, "t1.check(") < _first(cells, 'cow_table(eras=["6.18", flipped])')
    finder = _first(cells, "attack.find_attack(")
    for needle in ("sequence_task(", "length_task(", "t4.check(", "t5.check("):
        assert _first(cells, needle) < finder, needle
    assert _first(cells, "eras_task(") > finder      # phase 4 may use the finder's sequences as a fallback
    assert "64fe24a3e05e" in "\n".join(c.source for c in cells)     # v6.0 already upgraded dirty AE PTEs


def test_mapcount_lab_predictions_come_first():
    """In 08 the winner prediction precedes the results table, and the defended design has a checked task."""
    cells = _lab_cells("08-mapcount-lab.ipynb")
    assert _first(cells, "t1.check(") < _first(cells, "mapcount.run_all()")
    assert _first(cells, "defend_task(") < _first(cells, "mapcount.conclusions(")
    assert _first(cells, "t3.check(") < _first(cells, "large.run_large_all()")


def test_history_lab_notebook_shows_the_history(lab_runs):
    """Notebook 07 runs and shows the vmsplice leak, the stale pin and nothing under 6.18."""
    nb, _ = lab_runs["07-history-lab.ipynb"]
    text = _outputs(nb)
    assert "vmsplice() + unmap in child" in text and "5.7: 7 case(s) fail" in text and "6.18: 0 case(s) fail" in text
    assert "No answer yet" in _outputs(nb, "text/html")     # the task cells wait for the learner
    assert "the pin is stale" in text
    assert text.count("no counterexample within the budget") == 2
    assert "EFAULT" in text and "SIGSEGV" in text


def test_mapcount_lab_notebook_draws_and_concludes(lab_runs):
    """Notebook 08 runs, draws its four figures (three small-folio, one large-folio) and prints its
    computed conclusions for both."""
    nb, _ = lab_runs["08-mapcount-lab.ipynb"]
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 4
    assert "- Keeping an exact count cost" in _outputs(nb, "text/markdown")
    assert "- Per-page mapcounts cost" in _outputs(nb, "text/markdown")



# -- lab tasks ---------------------------------------------------------------------------------
from mmkit.labs import tasks  # noqa: E402


def test_flip_task_checked_by_the_table():
    """Flipping 6.18's reuse rule to the mapcount breaks exactly the cases cow_table() says; the task
    accepts that set (by number or name) and refuses a partial answer without naming the missing cases."""
    from mmkit.era import era
    from mmkit.scenarios import COW_CASES
    flipped = era("6.18").replace(reuse_rule="mapcount")
    fails = history.cow_table(eras=[flipped]).fails(flipped.name)
    names = [c.name for c in COW_CASES]
    t = tasks.flip_task()
    assert t.evaluate([names.index(f) + 1 for f in fails])[0] is True
    assert t.evaluate(fails)[0] is True
    ok, msgs = t.evaluate([names.index(fails[0]) + 1])
    assert ok is False and not any(f in " ".join(msgs) for f in fails[1:])
    assert t.evaluate(["no such case"])[0] is None


def test_sequence_tasks_judged_by_the_model():
    """A 5.7 leak and a stale R/O pin under 5.9 pass; a harmless sequence, an R/W pin, a too-long
    sequence and an unknown operation do not."""
    leak = tasks.sequence_task("5.7", "no_leak")
    assert leak.evaluate("fork; C vmsplices; C munmaps; P writes")[0] is True
    assert leak.evaluate("fork; C vmsplices; C writes; P writes")[0] is True      # not a cow.c case
    assert leak.evaluate("fork; P writes")[0] is False
    assert leak.evaluate("fork; C vmsplices; C munmaps; P mprotects R/O, R/W; P writes")[0] is False  # 5 ops
    assert leak.evaluate("fork; C dances")[0] is None
    ro = tasks.sequence_task("5.9", "pin_coherent")
    assert ro.evaluate("fork; P pins R/O; P writes")[0] is True
    ok, m = ro.evaluate("P pins R/W; P mprotects R/O, R/W; P writes")
    assert ok is False and "read-write" in " ".join(m)
    assert tasks.sequence_task("6.18", "no_leak").evaluate("fork; C vmsplices; C munmaps; P writes")[0] is False


def test_length_and_eras_tasks():
    """The shortest-attack prediction is checked by find_attack; the eras prediction by replay."""
    assert tasks.length_task("5.7", "no_leak").evaluate(4)[0] is True
    assert tasks.length_task("5.7", "no_leak").evaluate(3)[0] is False
    assert tasks.length_task("5.9", "pin_coherent").evaluate(3)[0] is True
    t = tasks.eras_task("fork; C vmsplices; C munmaps; P writes", "no_leak")
    ok, m = t.evaluate(["5.7"])
    assert ok is True and "6.18" in " ".join(m)
    assert t.evaluate(["5.7", "6.18"])[0] is False


def test_mapcount_tasks():
    """The winner prediction accepts the measured least-work mode (any of a tie), and the defended
    design's break-even ratio is checked to 5%."""
    res = {n: mapcount.run_workload(n, s) for n, s in
           (("fork-heavy", 200), ("long-lived", 100), ("truncate", 2000), ("migrate", 2000))}
    w = tasks.winner_task(res)
    work = {n: {m: r.costs[m].total("atomics") + r.costs[m].total("walk_steps") for m in tasks._CHOICES}
            for n, r in res.items()}
    best = {n: min(v, key=v.get) for n, v in work.items()}
    assert w.evaluate(best)[0] is True
    worst = {n: max(v, key=v.get) for n, v in work.items()}
    assert w.evaluate(worst)[0] is False
    d = tasks.defend_task("long-lived", res)
    r = res["long-lived"]
    ratio = ((r.costs["exact"].total("atomics") - r.costs["three_state"].total("atomics"))
             / (r.costs["three_state"].total("walk_steps") - r.costs["exact"].total("walk_steps")))
    assert d.evaluate(("three_state", ratio * 1.03))[0] is True
    assert d.evaluate(("three_state", ratio * 1.5))[0] is False
    assert d.evaluate(("exact", 1))[0] is None


def test_task_hints_end(capsys):
    """A task gives three hints, then says there are no more."""
    t = tasks.length_task()
    for _ in range(4):
        t.hint()
    assert "no more hints" in capsys.readouterr().out


def test_kernel_table_cites_the_kernel():
    """kernel_table() cites kernel files, functions or commits, never the facts file's section numbers."""
    import re
    text = str(mapcount.kernel_table())
    assert "facts" not in text
    assert not re.search(r"\((\d+\.\d+[, ]*)+\)", text)


def test_conclusions_render_as_text():
    """conclusions() prints as bulleted sentences, not as a Python list."""
    res = {n: mapcount.run_workload(n, s) for n, s in (("truncate", 500), ("migrate", 500))}
    c = mapcount.conclusions(res)
    assert not repr(c).startswith("[") and repr(c).startswith("- ")
    assert "<li>" in c._repr_html_()


# -- large folios (mmkit.labs.large) ---------------------------------------------------------------
from mmkit.errors import InvalidArgument  # noqa: E402


def test_large_rmap_costs_hand_computed():
    """One 16-page PTE batch costs per_page 16 _mapcount atomics + _nr_pages_mapped + large mapcount + MM
    slot, mm_id only the last two, as mm/rmap.c: __folio_add_rmap() does; a PMD costs a constant."""
    sim = large.LargeFolioSim()
    f = sim.new_folio(16)
    sim.map_ptes(f, 1, 0, 16)
    assert sim.costs["per_page"].updates == 16 + 1 + 2
    assert sim.costs["per_page_no_mm_id"].updates == 16 + 1 + 1
    assert sim.costs["mm_id"].updates == 2 and sim.costs["per_folio"].updates == 1
    assert sim.costs["per_page"].pages_touched == 17 and sim.costs["mm_id"].pages_touched == 1
    t = large.LargeFolioSim()
    g = t.new_folio(512)
    t.map_pmd(g, 1)
    assert (t.costs["per_page"].updates, t.costs["mm_id"].updates) == (4, 3)


def test_average_page_mapcount_is_the_kernels():
    """folio_average_page_mapcount() (fs/proc/internal.h): PTE mappings averaged over the folio, rounded
    to nearest, plus the entire mapcount, at least 1 while anything is mapped."""
    sim = large.LargeFolioSim()
    f = sim.new_folio(512)
    assert f.average() == 0
    sim.map_ptes(f, 1, 0, 100)
    assert f.average() == 1             # 100/512 rounds to 0, but at least 1
    sim.map_ptes(f, 2, 0, 512)
    sim.map_ptes(f, 3, 0, 300)          # 912/512 = 1.78 -> 2
    assert f.average() == 2
    sim.map_pmd(f, 4)
    assert f.average() == 3


def test_mm_slots_give_false_positives_never_false_negatives():
    """The shared bit: two mms set it, the second leaving clears it; a third mm without a slot can leave it
    set after the slot owners are gone ("maybe shared" while one mm maps the folio), never the reverse."""
    sim = large.LargeFolioSim()
    f = sim.new_folio(16)
    sim.map_ptes(f, 1, 0, 16)
    assert not f.maybe_shared()
    sim.map_ptes(f, 2, 0, 16)
    assert f.maybe_shared()
    sim.unmap_ptes(f, 2, 0, 16)
    assert not f.maybe_shared()
    for mm in (2, 3):
        sim.map_ptes(f, mm, 0, 16)
    sim.unmap_ptes(f, 1, 0, 16)
    sim.unmap_ptes(f, 2, 0, 16)
    assert f.mms() == {3} and f.maybe_shared()          # a false positive


def test_large_workloads_measure_the_trade():
    """Per-page modes are exact and pay per page; CONFIG_NO_PAGE_MAPCOUNT pays per call and gets averages
    and "maybe shared" wrong; before v6.15 it copies where v6.15 reuses; Wilcox's count walks."""
    res = large.run_large_all()
    for r in res.values():
        pp, mm = r.costs["per_page"], r.costs["mm_id"]
        assert pp.updates > 5 * mm.updates or r.name == "mthp-fork"
        assert pp.updates > mm.updates and pp.pages_touched > mm.pages_touched
        assert (pp.wrong_kpagecount, pp.wrong_exclusive, pp.missed_partial, pp.cow_copies) == (0, 0, 0, 0)
        assert r.costs["per_folio"].walk_steps > 0 and r.costs["per_folio"].wrong_kpagecount == 0
    assert res["partial-unmap"].costs["mm_id"].wrong_exclusive > 0
    assert res["partial-unmap"].costs["mm_id"].missed_partial == res["partial-unmap"].size
    assert res["mthp-fork"].costs["per_page_no_mm_id"].cow_copies == res["mthp-fork"].size
    assert res["mthp-fork"].costs["mm_id"].cow_copies == 0
    text = str(large.large_conclusions(res))
    assert text.startswith("- Per-page mapcounts cost") and "Wilcox" in text
    assert "partially mapped THPs were not recognised" in text


def test_large_plot_and_tables():
    """The large-folio figure has one panel per quantity (two costs, four kinds of wrong answer: pages, pages,
    THPs, write faults are never added into one bar) with a legend naming every mode; the tables one row per
    mode."""
    res = large.run_large_all()
    fig = large.plot_large(res)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 6
    titles = [a.get_title() for a in axes]
    for word in ("counter updates", "walk steps", "kpagecount", "PM_MMAP_EXCLUSIVE", "deferred split", "copied"):
        assert sum(word in t for t in titles) == 1, (word, titles)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert all(any(lbl.startswith(m + ":") for lbl in labels) for m in large.MODES)
    for tables in (large.large_costs_table(res), large.large_accuracy_table(res)):
        assert len(tables) == 3 and all(len(t) == len(large.MODES) for t in tables)
    with pytest.raises(InvalidArgument):
        large.run_large("nope")


def test_large_task_judged_by_the_runs():
    """Task 3 accepts exactly the answers the runs get wrong under CONFIG_NO_PAGE_MAPCOUNT."""
    res = large.run_large_all()
    t = tasks.large_task(res)
    truth = {n: tasks._large_wrong(r) for n, r in res.items()}
    assert t.evaluate(truth)[0] is True
    assert t.evaluate({n: set() for n in res})[0] is False
    assert t.evaluate({"thp-fork": {"bogus"}})[0] is None
    assert truth["partial-unmap"] == {"kpagecount", "exclusive", "pss", "partial"}


def test_large_task_feedback_names_the_workload_and_the_wrong_item_only():
    """A wrong task-3 answer is told, per wrong workload, which of its own items stays right and how many
    items that go wrong are missing, never which ones; a right workload is not commented."""
    res = large.run_large_all()
    t = tasks.large_task(res)
    truth = {n: tasks._large_wrong(r) for n, r in res.items()}
    ans = dict(truth)
    ans["thp-fork"] = (truth["thp-fork"] - {"pss"}) | {"partial"}
    ok, msgs = t.evaluate(ans)
    assert ok is False
    text = " ".join(msgs)
    line = next(m for m in msgs if m.startswith("thp-fork:"))
    assert "'partial' stays right" in line and "1 answer that comes out wrong at some read is missing" in line
    assert "pss" not in line
    assert not any(m.startswith(("mthp-fork:", "partial-unmap:")) for m in msgs)
    assert "2 of 3 workloads right" in text


def test_large_task_example_is_not_an_answer():
    """The task's answer form and notebook 08's example cell show the format without answer values."""
    t = tasks.large_task(large.run_large_all())
    for word in tasks.LARGE_ANSWERS:
        assert "{\"" + word not in t.answer_form and "{'" + word not in t.answer_form
    cells = _lab_cells("08-mapcount-lab.ipynb")
    ex = next(c.source for c in cells if c.source.startswith("t3.check("))
    assert not any(w in ex.split("#")[1] for w in ('"thp-fork"', '"pss"', '"kpagecount"'))


def test_large_workloads_are_specified_before_task_3():
    """workload_spec() states each workload step by step as the code runs it: in thp-fork each child writes a
    different page, and the answers are checked at more than one read (while the children live and after);
    notebook 08 shows it before task 3 and names the per-folio mode apart from the other 'folio's."""
    spec = large.workload_spec()
    assert [t.caption.split(":")[0] for t in spec] == list(large.LARGE_WORKLOADS)
    thp = str(spec[0])
    pages = [(large.THP_COW_STRIDE * j) % 512 for j in range(3)]
    assert len(set(pages)) == 3 and f"pages {', '.join(map(str, pages))}" in thp
    assert "a different page per child" in thp
    for t in spec:
        assert sum(row[2] == "yes" for row in t.rows) >= 2, t.caption
    cells = _lab_cells("08-mapcount-lab.ipynb")
    assert _first(cells, "large.workload_spec()") < _first(cells, "t3.check(")
    md = "\n".join(c.source for c in cells)
    assert "`per_folio`" in md and "exercise kind `folio`" in md
    assert "each child writes one page of each THP" not in md


def _model_vs_sim(page_mapcount):
    """The thp-fork workload's first half run on the model kernel and replayed in the lab's simulator."""
    k = Kernel(era="6.18", page_mapcount=page_mapcount, trace="off")
    p = k.spawn("P")
    a = p.mmap(512 * 2)
    p.madvise(a, 512 * 2, "hugepage")
    for f in range(2):
        p.write(a + f * 512 * 4096, b"x")
    kids = [p.fork(f"C{j}") for j in range(3)]
    for j, c in enumerate(kids):
        for f in range(2):
            c.write(a + (f * 512 + 7 * j) * 4096, b"y")
    sim = large.LargeFolioSim()
    folios = [sim.new_folio(512) for _ in range(2)]
    for f in folios:
        sim.map_pmd(f, 1)
    for c in range(2, 5):
        for f in folios:
            sim.map_pmd(f, c)
    for j, c in enumerate(range(2, 5)):
        for f in folios:
            sim.split_pmd(f, c)
            sim.unmap_ptes(f, c, 7 * j, 1)
    return k, p, a, folios


@pytest.mark.parametrize("page_mapcount", [True, False])
def test_large_lab_simulator_agrees_with_the_model(page_mapcount):
    """Replaying fork + child COW of THPs, the simulator's counters equal the model kernel's: per-page
    mapcount (or the average without per-page mapcounts), large and entire mapcount, maybe-shared."""
    k, p, a, folios = _model_vs_sim(page_mapcount)
    for fi, f in enumerate(folios):
        for i in (0, 7, 14, 100, 511):
            info = k.page(p, a + (fi * 512 + i) * 4096)
            expect = f.page_mapcount(i) if page_mapcount else f.average()
            assert info.mapcount == expect, (fi, i, info.mapcount, expect)
            assert (info.large_mapcount, info.entire_mapcount) == (f.large, f.entire)
            assert info.maybe_mapped_shared == f.maybe_shared()


def test_large_lab_mm_slots_agree_with_the_model():
    """Three processes map an mTHP, the two slot owners unmap it: the model and the simulator both keep
    "maybe mapped shared" set for the one process left (a false positive, as the kernel's slots give)."""
    k = Kernel(era="6.18", trace="off")
    k.thp.set("64kB", "always")
    p = k.spawn("P")
    a = p.mmap(16)
    p.write(a, b"x")
    c = p.fork("C")
    g = c.fork("G")
    p.munmap(a, 16)
    c.munmap(a, 16)
    sim = large.LargeFolioSim()
    f = sim.new_folio(16)
    for mm in (1, 2, 3):
        sim.map_ptes(f, mm, 0, 16)
    sim.unmap_ptes(f, 1, 0, 16)
    sim.unmap_ptes(f, 2, 0, 16)
    info = k.page(g, a)
    assert info.maybe_mapped_shared is True and f.maybe_shared() is True
    assert info.large_mapcount == f.large == 16
