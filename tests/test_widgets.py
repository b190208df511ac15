"""Tests of mmkit.widgets: the Stepper and Compare, driven from Python without a browser."""

import io

import ipywidgets as W
import pytest
from PIL import Image

from mmkit import Kernel
from mmkit.errors import InvalidArgument
from mmkit.scenario import Scenario
from mmkit.scenarios import COW_CASES, TOPICS
from mmkit.widgets import Compare, Stepper, pages_table, trace_html


def png_size(data):
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_stepper_shows_graph_explanation_trace_and_counters():
    """A step redraws the PNG and shows the explanation, the kernel decisions and the counters."""
    w = Stepper("fork", era="6.18")
    assert (w.index, w.status.value) == (0, "step 0/3 drawn")
    assert "mm-status" in w.status._dom_classes and isinstance(w, W.VBox)
    first = w.png
    w.step()
    assert w.index == 1 and len(w.results) == 1
    w_in, h_in = w.figure.get_size_inches()
    assert w.png != first and w.image.value == w.png
    assert png_size(w.png) == (round(w_in * w.preset.dpi), round(h_in * w.preset.dpi))   # the whole figure
    assert TOPICS["fork"].steps[0].explain in w.explain.value
    assert "do_anonymous_page" in w.trace.value and "parent.write(" in w.trace.value
    assert "new exclusive page, mapped writable" in w.trace.value
    assert "<table class='mm-pages'" in w.table.value and ">parent<" in w.table.value
    w.step()
    assert w.status.value == "step 2/3 drawn"
    assert "copy_present_pte" in w.trace.value
    assert "background:#fbd9bf" in w.table.value                       # refcount 1 -> 2 highlighted
    assert w.results[-1].pages["child"].mapcount == 2
    assert w.kernel.page(w.playback.ns.c, w.playback.ns.a).refcount == 2


def test_back_restores_the_snapshot():
    """back() restores the previous state and trace without rerunning earlier steps."""
    calls = []
    sc = Scenario("count", "counting steps", watch=[("p", "p", "a")])
    sc.add("map", "Map and write.", lambda k, s: (calls.append("map"), setattr(s, "p", k.spawn("p")),
                                                   setattr(s, "a", s.p.mmap(1)), s.p.write(s.a, b"x"))[-1])
    sc.add("fork", "Fork.", lambda k, s: (calls.append("fork"), setattr(s, "c", s.p.fork("c")))[-1])
    w = Stepper(sc)
    calls.clear()                               # the layout was planned on a scratch run
    w.step()
    trace_len = len(w.kernel.trace)
    png1 = w.png
    w.step()
    w.back()
    assert calls == ["map", "fork"]
    assert w.index == 1 and len(w.kernel.trace) == trace_len
    assert w.kernel.page(w.playback.ns.p, w.playback.ns.a).exclusive
    assert not hasattr(w.playback.ns, "c")
    assert w.png == png1 and w.status.value == "step 1/2 drawn"
    w.back()
    w.back()
    assert w.index == 0 and w.back_button.disabled


def test_goto_slider_buttons_and_reset():
    """The slider jumps, the buttons step and go back, reset returns to step 0."""
    w = Stepper("cow_child_writes")
    n = len(TOPICS["cow_child_writes"])
    assert w.slider.max == n and w.play.max == n
    w.slider.value = 3
    assert w.index == 3 and w.status.value == f"step 3/{n} drawn"
    w.back_button.click()
    assert w.index == 2 and w.slider.value == 2
    w.step_button.click()
    w.step_button.click()
    assert w.index == 4 and w.play.value == 4
    w.goto(99)
    assert w.index == n and w.step_button.disabled
    w.step()
    assert w.index == n
    w.reset_button.click()
    assert w.index == 0 and w.results == [] and w.slider.value == 0
    with pytest.raises(InvalidArgument):
        w.goto("2")


def test_era_switch_reruns_to_the_same_step():
    """Switching the era reruns the scenario to the current step, so the outcomes can be compared."""
    w = Stepper("vmsplice_child", era="6.18")
    w.goto(6)
    assert w.results[-1].outcome == b"old data"
    w.set_era("5.7")
    assert w.index == 6 and w.era.name == "5.7" and w.era_select.value == "5.7"
    assert w.results[-1].outcome == b"NEW DATA"
    # 5.7 decides otherwise than the 6.18 text says: the explanation is 5.7's own
    assert "data-caption='trace'" in w.explain.value and "In era 5.7" in w.explain.value
    assert w.status.value == "step 6/6 drawn"
    w.era_select.value = "5.9"
    assert w.era.name == "5.9" and w.results[-1].outcome == b"old data"
    w.back()
    assert w.kernel.era.name == "5.9" and w.index == 5


def test_explanation_is_true_for_the_era_shown():
    """Under 5.7 the CVE-2020-29374 step explains the reuse 5.7 does; under 6.18 the copy; Compare panels follow their era."""
    old, new = Stepper("vmsplice_child", era="5.7"), Stepper("vmsplice_child", era="6.18")
    old.goto(5)
    new.goto(5)
    assert "reuses" in old.explain.value and "copies" not in old.explain.value
    assert "data-caption='variant'" in old.explain.value
    assert "copies" in new.explain.value and "data-caption='reference'" in new.explain.value
    c = Compare("vmsplice_child", eras=("5.7", "6.18"))
    c.goto(5)
    assert ["reuses" in s.explain.value for s in c.steppers] == [True, False]


def test_status_is_set_after_the_image():
    """The status label says 'drawn' only once the new PNG is in the image widget."""
    w = Stepper("first_touch")
    seen = []
    w.status.observe(lambda c: seen.append((c.new, w.image.value)), names="value")
    w.step()
    w.step()
    drawn = [(s, png) for s, png in seen if s.endswith("drawn")]
    assert [s for s, _ in drawn] == ["step 1/4 drawn", "step 2/4 drawn"]
    assert drawn[-1][1] == w.png and drawn[0][1] != drawn[1][1]
    assert [s for s, _ in seen if s.endswith("drawing…")] == ["step 1/4 drawing…", "step 2/4 drawing…"]


def test_a_scenario_of_your_own_in_three_lines():
    """A hand-written scenario runs in the stepper; a failing step is shown, not raised."""
    sc = Scenario("mine", "fork then write", watch=[("parent", "p", "a")])
    sc.add("map", "Map one page and write it.",
           lambda k, s: (setattr(s, "p", k.spawn("parent")), setattr(s, "a", s.p.mmap(1)), s.p.write(s.a, b"x")))
    sc.add("oops", "A bug in the scenario.", lambda k, s: 1 / 0)
    w = Stepper(sc)
    w.step()
    assert w.results[-1].pages["parent"].exclusive
    assert "a: rw-p anon" in w.playback.graph().nodes[("vma", w.kernel.tasks[1].mm.vmas[0].id)]["label"]
    w.step()
    assert w.index == 1 and w.status.value == "step 1/2 error"
    assert "ZeroDivisionError" in w.explain.value
    w.back()
    assert w.index == 0 and w.status.value == "step 0/2 drawn"


def test_every_shipped_scenario_plays_to_the_end():
    """Every topic and every cow.c case plays to its last step under 6.18."""
    for sc in list(TOPICS.values()) + COW_CASES[:4]:
        w = Stepper(sc)
        w.goto(len(sc))
        assert w.status.value == f"step {len(sc)}/{len(sc)} drawn"
        assert w.error is None and png_size(w.png)[0] >= 800


def test_play_follows_the_slider_in_the_browser():
    """The browser link copies the slider to the Play widget, never a stale Play value to the slider."""
    w = Stepper("fork")
    c = Compare("fork")
    for x in (w, c):
        assert x._link.source == (x.slider, "value") and x._link.target == (x.play, "value")
    c.goto(2)
    assert c.play.value == c.slider.value == 2


def test_lecture_preset_and_speed():
    """The lecture preset draws a 16:9 PNG and larger buttons; the speed sets the play interval."""
    w = Stepper("fork", preset="lecture")
    assert png_size(w.png) == (1280, 720)
    assert w.step_button.layout.height == "48px" and w.step_button.style.font_size == "18px"
    w.speed.value = 600
    assert w.play.interval == 600


def test_grouped_state_can_be_expanded():
    """A large state is grouped; picking a range in the dropdown shows its pages one by one."""
    sc = Scenario("big", "100 pages and a fork")
    sc.add("write", "100 pages.", lambda k, s: (setattr(s, "p", k.spawn("p")), setattr(s, "a", s.p.mmap(100)),
                                               s.p.write(s.a, b"x" * (100 * k.PAGE_SIZE))))
    sc.add("fork", "Shared.", lambda k, s: setattr(s, "c", s.p.fork("c")))
    w = Stepper(sc)
    w.goto(2)
    assert w.expand_select.layout.display == ""
    labels = [label for label, value in w.expand_select.options if value is not None]
    assert labels == ["pages 0–99 (100) · shared r2 m2 p0"]
    w.expand_select.value = w.expand_select.options[1][1]
    g = w.playback.graph()
    assert sum(1 for n in g if n[0] == "folio") == 100
    assert w.status.value == "step 2/2 drawn"
    assert w.expand_select.options[-1] == ("group everything again", "collapse")
    w.expand_select.value = "collapse"
    assert sum(1 for n in w.playback.graph() if n[0] == "folio") == 0


def test_compare_two_eras_side_by_side():
    """Compare steps both eras together and flags the step where their outcomes differ."""
    c = Compare("vmsplice_child", eras=("5.7", "6.18"))
    assert [s.era.name for s in c.steppers] == ["5.7", "6.18"] and c.status.value == "step 0/6 drawn"
    c.goto(5)
    assert not c.differs and c.verdict.value == ""
    c.step_button.click()
    assert c.index == 6 and c.differs and "the eras disagree" in c.verdict.value
    assert "b&#x27;NEW DATA&#x27;" in c.verdict.value and c.status.value == "step 6/6 drawn"
    assert all(s.png and s.status.value == "step 6/6 drawn" for s in c.steppers)
    assert "era 5.7" in c.table.value and "era 6.18" in c.table.value
    c.back()
    assert c.index == 5 and [s.index for s in c.steppers] == [5, 5]
    with pytest.raises(InvalidArgument):
        Compare("fork", eras=("6.18",))


def test_html_helpers():
    """The trace and counters helpers escape their text and mark changed cells."""
    k = Kernel()
    p = k.spawn("<p>")
    a = p.mmap(1)
    mark = len(k.trace)
    p.write(a, b"x")
    events = k.trace[mark:]
    html = trace_html([("<op>", events)])
    assert "&lt;op&gt;" in html and "do_anonymous_page" in html
    assert "no kernel activity" in trace_html([])
    before = {"<p>": None}
    now = {"<p>": k.page(p, a)}
    table = pages_table(now, before)
    assert "&lt;p&gt;" in table and table.count("background:#fbd9bf") == 10
    assert pages_table({}) == ""
