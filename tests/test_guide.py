"""The instructor guide (docs/instructor-guide.md) says what the model computes and covers every notebook."""

import ast
import pathlib
import re

import pytest

from mmkit.exercises import guide

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "instructor-guide.md"
REGEN = "run `.venv/bin/python -m mmkit.exercises.guide` and commit docs/instructor-guide.md"


@pytest.fixture(scope="module")
def text():
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _lecturer(monkeypatch, tmp_path):
    """The guide is the lecturer's: no student release while it is checked."""
    monkeypatch.delenv("MMKIT_RELEASE", raising=False)
    monkeypatch.setenv("MMKIT_RELEASE_CONFIG", str(tmp_path / "none.toml"))


def test_generated_blocks_are_current(text):
    """Every computed block (answers, misconceptions, the notebook table) equals what the model and the
    notebooks give now, and every notebook that asks something has its blocks."""
    found = guide.problems(text)
    assert not found, "; ".join(found) + " -- " + REGEN


def test_guide_names_every_misconception(text):
    """Every misconception the exercises can name appears in the guide, by key and by title."""
    for key, m in guide.all_misconceptions().items():
        assert f"(`{key}`)" in text and m.title in text, key


def _rows(text, nb):
    m = re.search(rf"<!-- BEGIN GENERATED answers {re.escape(nb)} -->\n(.*?)<!-- END GENERATED -->", text, re.S)
    assert m, f"no answers block for {nb} -- {REGEN}"
    return [ln for ln in m.group(1).splitlines() if ln.startswith("| `")]


def test_answers_in_the_guide_pass_the_checkers(text):
    """Read back from the guide's text, every prediction's and multiple-choice answer is accepted by the
    notebook question's own checker, and every lab task's answer by the task's check()."""
    checked = 0
    for nb in guide.notebooks_with_questions():
        rows = _rows(text, nb)
        path = ROOT / "notebooks" / f"{nb}.ipynb"
        by_name = {name: q for name, _, q in guide.notebook_questions(path)}
        by_name.update({name: t for name, _, t, _ in guide.notebook_tasks(path)})
        assert len(rows) == len(by_name), (nb, "rows and questions differ", REGEN)
        for row in rows:
            name = re.match(r"\| `(\w+) = ", row).group(1)
            obj = by_name[name]
            answer_cell = row.rsplit(" | ", 1)[1].rstrip(" |")
            if hasattr(obj, "parts") and obj._checker is None:
                vals = dict(re.findall(r"(\w+) = \*\*(.+?)\*\*", answer_cell))
                assert set(vals) == {p.name for p in obj.parts}, row
                assert obj.evaluate(**vals)[0] is True, row
            elif hasattr(obj, "parts") and obj.choices:
                letter = re.fullmatch(r"\*\*([A-D])\*\*", answer_cell).group(1)
                assert obj.evaluate(letter)[0] is True, row
            elif hasattr(obj, "parts"):
                assert "one program that works" in answer_cell, row
                continue
            else:                                   # a lab task: every `answer` listed passes
                for lit in re.findall(r"`([^`]+)`", answer_cell):
                    assert obj.evaluate(ast.literal_eval(lit.replace("inf", "1e999")))[0] is True, (row, lit)
            checked += 1
    assert checked >= 30


def test_outline_covers_every_notebook(text):
    """The outline maps every notebook (and the glossary) to a meeting, and the guide has a section per notebook."""
    outline = text.split("## Course outline", 1)[1].split("## Per notebook", 1)[0]
    for p in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert p.name in outline, p.name
        if p.stem[:2].isdigit():
            assert re.search(rf"^### {int(p.stem[:2]):02d} · ", text, re.M), p.stem
            number = p.stem[:2]
            meetings = [ln for ln in outline.splitlines() if ln.startswith("| Lecture") or ln.startswith("| Lab")]
            assert any(re.search(rf"\b{number}\b", ln) for ln in meetings), number
    assert "glossary" in outline.lower()


def test_guide_explains_release_grading_live_and_hub(text):
    """The guide tells how to hand out and grade exercises and run the live parts and the hub, naming the real commands."""
    for needle in ("MMKIT_RELEASE=1", "mmkit-release.toml", "python -m mmkit.grading export", "nbgrader autograde",
                   "export_attempts", "make present", "python -m mmkit.conformance", "hub/README.md", "make hub",
                   "python -m mmkit.live record"):
        assert needle in text, needle
    for cmd in re.findall(r"`(make [a-z-]+)", text):
        target = cmd.split()[1]
        assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M), cmd


def test_course_plans_fit_their_meetings(text):
    """Every meeting of both course plans adds up to its length, each notebook's minutes in class are its stated core time or less, and a shortfall is named as homework."""
    stated = guide.stated_minutes()
    assert set(stated) >= {f"{n:02d}" for n in range(10)} or len(stated) >= 10
    for name in guide.PLANS:
        assert f"<!-- BEGIN GENERATED {name} -->" in text, name
        planned = set()
        for meeting, minutes, total, nbs in guide.plan_sums(name):
            assert total == minutes, (name, meeting, total, minutes)
            for stem, (in_class, core) in nbs.items():
                assert core is not None and 0 < in_class <= core, (name, meeting, stem)
                planned.add(stem)
        assert {p for p in stated if p[:2].isdigit()} <= planned, name
        block = guide.plan_block(name)
        for meeting, minutes, total, nbs in guide.plan_sums(name):
            row = next(ln for ln in block.splitlines() if ln.startswith(f"| {meeting} |"))
            for stem, (in_class, core) in nbs.items():
                if in_class < core:
                    assert f"notebook {stem[:2]}:" in row.split(" | ")[3], (name, meeting, stem)
