"""Conformance: the model and the live kernel agree step by step (mmkit.conformance)."""

import pytest

from mmkit import Kernel
from mmkit.conformance import RACY, compare, default_scenarios, main, run_conformance, run_scenario
from mmkit.live import available
from mmkit.scenario import Scenario
from mmkit.scenarios import get

OK, WHY = available()
live = pytest.mark.skipif(not OK, reason=WHY)
URING_OK, URING_WHY = available("io_uring")
uring = pytest.mark.skipif(not URING_OK, reason=f"needs io_uring: {URING_WHY}")


def model():
    return Kernel(era="6.18")


def test_model_agrees_with_itself():
    """Comparing the model with itself finds no disagreement in any scenario."""
    rep = run_conformance(default_scenarios(), model=model, live=model)
    assert rep.ok, rep.failures


def test_disagreement_names_scenario_step_and_field():
    """A kernel that behaves differently (the 5.7 mapcount rule) fails naming step and field."""
    rep = run_conformance([get("vmsplice_child")], model=model, live=lambda: Kernel(era="5.7"), retries=0)
    assert not rep.ok
    assert "vmsplice_child: step 6 'child reads the pipe' outcome: model b'old data', live b'NEW DATA'" \
        in rep.failures
    assert any("step 5 'parent writes' parent.same_page_as_before" in f for f in rep.failures)
    assert "<-- " in rep.format()


def test_page_identity_is_compared_by_relation_not_pfn():
    """Different PFN numbers agree as long as same-page/different-page relations match."""
    sc = get("cow_child_writes")
    a, _ = run_scenario(sc, model())
    b, _ = run_scenario(sc, model())
    for row in b:
        for c in row.cells.values():
            if c.pfn is not None:
                c.pfn += 1000
    assert compare(sc.name, a, b, [w[0] for w in sc.watch]) == []
    b[2].cells["child"].pfn = b[2].cells["parent"].pfn
    fails = compare(sc.name, a, b, [w[0] for w in sc.watch])
    assert any("child.same_page_as_before" in f for f in fails)
    assert any("parent.same_page_as_child" in f for f in fails)


def test_racy_steps_are_shown_but_not_compared():
    """A step listed in RACY may return anything on the live side."""
    sc = Scenario("r", "racy", watch=[("p", "p", "a")])
    sc.add("map", "", lambda k, s: (setattr(s, "p", k.spawn()), setattr(s, "a", s.p.mmap(1)),
                                    s.p.write(s.a, b"x"))[-1])
    sc.add("flip", "", lambda k, s: 1)
    a, _ = run_scenario(sc, model())
    b, _ = run_scenario(sc, model())
    b[1].outcome = 0
    names = ["p"]
    assert compare("r", a, b, names) == ["step 2 'flip' outcome: model 1, live 0"]
    assert compare("r", a, b, names, racy={("r", "flip"): "why"}) == []
    assert ("migration", "migrate a") in RACY


@live
@pytest.mark.parametrize("sc", default_scenarios(), ids=lambda sc: sc.name)
def test_live_kernel_agrees_with_model(sc):
    """Each scenario runs on the model and on the live kernel with no disagreement."""
    rep = run_conformance([sc])
    assert rep.ok, "\n".join(rep.failures) + "\n" + rep.format()


@live
@uring
def test_only_long_term_readonly_pins_are_unsupported_live():
    """Exactly the long-term R/O pin cases stop live with ENOSYS; every writable cell gets known."""
    rep = run_conformance()
    uns = [c.unsupported for c in rep.comparisons if c.unsupported]
    assert uns and all("long-term read-only pin" in u for u in uns)
    assert all(c.writable_counts()[2] == 0 for c in rep.comparisons)


@live
def test_cli_prints_tables_and_summary(capsys):
    """python -m mmkit.conformance prints a table per scenario and exits 0 when all agree."""
    assert main(["-s", "fork", "-s", "cow_after_exit"]) == 0
    out = capsys.readouterr().out
    assert "fork -- " in out and "cow_after_exit -- " in out and "0 disagree" in out
