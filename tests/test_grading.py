"""Graded work with nbgrader (mmkit.grading): export, per-student seeds, hidden tests, autograde, grade table."""

import json
import os
import subprocess
import sys

import nbformat
import pytest

from mmkit import grading
from mmkit.exercises import generate

PROBLEMS = (("fork", "predict", 2), ("cow", "predict", 2), ("pin", "predict", 3), ("cow", "inverse", 2))
POINTS = 2


@pytest.fixture
def lecturer(monkeypatch, tmp_path):
    """The lecturer's view: no release mode, no config file."""
    monkeypatch.delenv("MMKIT_RELEASE", raising=False)
    monkeypatch.setenv("MMKIT_RELEASE_CONFIG", str(tmp_path / "none.toml"))


def _env(tmp_path, **extra):
    """An environment that keeps Jupyter's and IPython's files inside tmp_path and finds nbgrader's tools."""
    bindir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMKIT_", "JUPYTER", "NBGRADER"))}
    env.update(PATH=bindir + os.pathsep + env.get("PATH", "/usr/bin:/bin"), HOME=str(tmp_path / "home"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"), IPYTHONDIR=str(tmp_path / "ipython"),
               PYTHONDONTWRITEBYTECODE="1", MMKIT_RELEASE_CONFIG=str(tmp_path / "none.toml"), **extra)
    os.makedirs(env["HOME"], exist_ok=True)
    return env


def _nbgrader(course, env, *args):
    r = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _wrong(q, key):
    """A wrong answer to ``q`` that its checker can read: the first part changed (or another letter)."""
    if q._checker is not None:
        return next(x for x in q.choices if x != key)
    vals = list(key) if len(q.parts) > 1 else [key]
    p, v = q.parts[0], vals[0]
    if isinstance(v, bool):
        vals[0] = not v
    elif isinstance(v, int):
        vals[0] = v + 7
    elif p.type in p.CHOICES:
        vals[0] = next(c for c in p.CHOICES[p.type] if c != v)
    elif p.type == "migrated":
        vals[0] = "EAGAIN" if v == "migrated" else "migrated"
    else:
        vals[0] = "SIGBUS" if v != "SIGBUS" else "zero"
    return tuple(vals) if len(q.parts) > 1 else vals[0]


def test_seed_is_per_student_and_stable():
    """Each student gets their own stable seed per question, the same on every machine."""
    assert grading.seed_for("ps1", "alice", 1) == grading.seed_for("ps1", "alice", 1)
    seeds = {grading.seed_for("ps1", s, n) for s in ("alice", "bob", "carol") for n in (1, 2, 3)}
    assert len(seeds) == 9
    assert all(0 <= s < 2 ** 24 for s in seeds)


def test_student_id_sources(monkeypatch, tmp_path):
    """The student is the autograder's student folder, else $MMKIT_STUDENT, else $JUPYTERHUB_USER; none is an error."""
    for v in ("MMKIT_STUDENT", "JUPYTERHUB_USER", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(grading.MMError, match="MMKIT_STUDENT"):
        grading.student_id()
    monkeypatch.setenv("JUPYTERHUB_USER", "hubuser")
    assert grading.student_id() == "hubuser"
    monkeypatch.setenv("MMKIT_STUDENT", "s42")
    assert grading.student_id() == "s42"
    d = tmp_path / "autograded" / "dave" / "ps1"
    d.mkdir(parents=True)
    monkeypatch.chdir(d)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert grading.student_id() == "dave"


def test_score_gives_partial_credit(lecturer):
    """score() shares a question's points among its parts; unreadable or missing answers score 0."""
    q = next(q for s in range(40) for q in [generate("pin", s, difficulty=3)] if len(q.parts) >= 2)
    key = q.answer_key()
    n = len(q.parts)
    assert grading.score(q, key, points=2) == 2
    assert grading.score(q, _wrong(q, key), points=2) == round(2 * (n - 1) / n, 4)
    assert grading.score(q, ..., points=2) == 0 and grading.score(q, "nonsense", points=2) == 0
    with pytest.raises(AssertionError):
        grading.readable(q, ...)
    grading.readable(q, _wrong(q, key))


def test_nbgrader_round_trip(lecturer, tmp_path):
    """Export -> nbgrader generate_assignment (no solutions or hidden tests in the student version) -> three
    students answer all right, some wrong, nothing -> nbgrader autograde (in release mode, as on the hub)
    -> the grade table holds the expected scores."""
    course = tmp_path / "course"
    src = grading.export_nbgrader(str(course), "ps1", PROBLEMS, points=POINTS)
    assert src.startswith(str(tmp_path))
    env = _env(tmp_path)
    _nbgrader(course, env, "generate_assignment", "ps1")
    released = course / "release" / "ps1" / "ps1.ipynb"
    student_text = released.read_text()
    for secret in ("answer_key", "HIDDEN TESTS", "grading.score"):
        assert secret not in student_text, secret
    assert "grading.readable(q1, answer_1)" in student_text and "answer_1 = ..." in student_text

    expected = {}
    plans = {"alice": "right", "bob": "mixed", "carol": "blank"}
    for student, plan in plans.items():
        nb = nbformat.read(released, as_version=4)
        total = 0.0
        for n, (kind, form, difficulty) in enumerate(PROBLEMS, 1):
            q = grading.question("ps1", student, n, kind, form, difficulty)
            key = q.answer_key()
            if plan == "blank":
                continue
            ans = _wrong(q, key) if plan == "mixed" and n % 2 == 1 else key
            total += grading.score(q, ans, points=POINTS)
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"q{n}-answer")
            cell.source = cell.source.replace(f"answer_{n} = ...", f"answer_{n} = {ans!r}")
        expected[student] = round(total, 2)
        dest = course / "submitted" / student / "ps1"
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / "ps1.ipynb")
    assert expected["alice"] == POINTS * len(PROBLEMS) and expected["carol"] == 0
    assert 0 < expected["bob"] < expected["alice"]
    # the three students saw different programs
    codes = {s: grading.question("ps1", s, 2, "cow").source.code() for s in plans}
    assert len(set(codes.values())) == 3

    _nbgrader(course, _env(tmp_path, MMKIT_RELEASE="1"), "autograde", "ps1")
    table = grading.grade_table(str(course), "ps1")
    assert {r["student"]: round(r["score"], 2) for r in table} == expected
    assert all(r["max_score"] == POINTS * len(PROBLEMS) for r in table)
    graded = (course / "autograded" / "bob" / "ps1" / "ps1.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" in graded          # nbgrader put the hidden tests back to grade

    # nbgrader's own export agrees, and so does python -m mmkit.grading grades
    _nbgrader(course, env, "export", "--to", str(tmp_path / "grades.csv"))
    csv_text = (tmp_path / "grades.csv").read_text()
    assert "alice" in csv_text and "carol" in csv_text
    r = subprocess.run([sys.executable, "-m", "mmkit.grading", "grades", str(course), "--json"], env=env,
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {x["student"]: round(x["score"], 2) for x in json.loads(r.stdout)} == expected


def test_export_states_its_feedback_and_readable_titles(lecturer, tmp_path):
    """The exported assignment says which feedback check() gives (verdict-only by default, full on request), sets it in the set-up cell, and titles questions in words, not kind/form jargon."""
    nb = grading.assignment_notebook("ps1", PROBLEMS)
    intro, setup = nb.cells[0].source, nb.cells[1].source
    assert "as often as you like" not in intro and "only right or wrong" in intro
    assert "MMKIT_RELEASE_FEEDBACK'] = 'verdict'" in setup
    titles = [c.source for c in nb.cells if c.metadata["nbgrader"]["grade_id"].endswith("-title")]
    assert titles[0].startswith("## Question 1: what fork() shares") and "predict;" not in titles[0]
    full = grading.assignment_notebook("ps1", PROBLEMS, feedback="full")
    assert "explains a wrong part" in full.cells[0].source
    r = subprocess.run([sys.executable, "-m", "mmkit.grading", "export", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "default ps1" in r.stdout and "--feedback" in r.stdout
