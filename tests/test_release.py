"""Student release mode (mmkit.release): answers hidden, verdicts and feedback kept."""

import subprocess
import sys

import pytest

from mmkit import release
from mmkit.errors import MMError
from mmkit.exercises import generate, predict
from mmkit.labs import tasks
from mmkit.release import ReleaseModeError


@pytest.fixture
def on(monkeypatch, tmp_path):
    """Release mode on through the environment, no config file anywhere."""
    monkeypatch.setenv("MMKIT_RELEASE", "1")
    monkeypatch.setenv("MMKIT_RELEASE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("MMKIT_RELEASE_HINTS", raising=False)
    monkeypatch.delenv("MMKIT_RELEASE_CONTACT", raising=False)


@pytest.fixture
def off(monkeypatch, tmp_path):
    """Release mode off: no variable, no config file."""
    monkeypatch.delenv("MMKIT_RELEASE", raising=False)
    monkeypatch.setenv("MMKIT_RELEASE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("MMKIT_RELEASE_HINTS", raising=False)


def test_answers_hidden_with_a_clear_error(on):
    """answer_key(), solution() and explanation() raise an MMError that says release mode is on and who can turn it off."""
    q = generate("cow", seed=7)
    for call in (q.answer_key, q.solution, q.explanation):
        with pytest.raises(ReleaseModeError) as e:
            call()
        assert isinstance(e.value, MMError)
        assert "Release mode is on" in str(e.value) and "your lecturer" in str(e.value)
        assert "MMKIT_RELEASE" in str(e.value)


def test_check_still_gives_verdicts_and_misconceptions(on, monkeypatch):
    """check()/evaluate() still judge right and wrong answers and name the misconception behind a wrong one."""
    monkeypatch.setenv("MMKIT_RELEASE", "0")
    q = predict("fork", after="fork", fields=("refcount", "mapcount"), who="parent")
    right = q.answer_key()
    monkeypatch.setenv("MMKIT_RELEASE", "1")
    assert q.evaluate(right)[0] is True
    ok, msgs = q.evaluate((right[1] + 5, right[1]))
    assert ok is False and len(msgs) >= 2
    assert q.check(right) is True and q.attempts[-1]["ok"] is True


def test_obvious_attributes_hidden(on):
    """q.run, q.source of a multiple-choice/build question and the checkers' letter/states/program raise in release mode."""
    q = generate("cow", seed=3)
    with pytest.raises(ReleaseModeError):
        q.run
    inv = generate("cow", seed=3, form="inverse")
    build = generate("cow", seed=3, form="build")
    for get in (lambda: inv.source, lambda: inv._checker.letter, lambda: inv._checker.states,
                lambda: build.source, lambda: build._checker.program):
        with pytest.raises(ReleaseModeError):
            get()
    assert not hasattr(q, "_answers") and not hasattr(q, "answer")
    # the shown program of a predict question is not hidden: it is the question
    assert q.source.code()
    # the multiple-choice checker still judges
    assert inv.evaluate("Z")[0] is None


def test_answer_key_outside_release(off):
    """Outside release mode answer_key() works for every form: values, the letter, the program."""
    q = generate("cow", seed=3)
    assert q.evaluate(q.answer_key())[0] is True
    inv = generate("cow", seed=3, form="inverse")
    assert inv.evaluate(inv.answer_key())[0] is True
    build = generate("cow", seed=3, form="build")
    prog = build.answer_key()

    def b(k):
        env = {}
        for op in prog.ops:
            op.apply(k, env)
        return env["P"], env["a"]
    assert build.evaluate(b)[0] is True


def test_disabled_hint_tiers(on, monkeypatch, capsys):
    """Hint tiers the lecturer disables are skipped by hint(), raise for hint(n), and are left out of hints()."""
    monkeypatch.setenv("MMKIT_RELEASE_HINTS", "1")
    q = generate("fork", seed=2)
    assert len(q.hints()) == 1
    q.hint()
    assert "Hint 1/3" in capsys.readouterr().out
    q.hint()
    out = capsys.readouterr().out
    assert "no more hints" in out and "turned off" in out
    with pytest.raises(ReleaseModeError):
        q.hint(3)
    monkeypatch.setenv("MMKIT_RELEASE_HINTS", "none")
    with pytest.raises(ReleaseModeError):
        generate("fork", seed=2).hint()


def test_lab_tasks_hints_follow_release(on, monkeypatch, capsys):
    """Lab tasks keep judging in release mode and show only the allowed hint tiers."""
    monkeypatch.setenv("MMKIT_RELEASE_HINTS", "1,2")
    t = tasks.sequence_task("5.7", "no_leak")
    assert t.evaluate("fork; C vmsplices; C munmaps; P writes")[0] is True
    assert len(t.hints()) == 2
    t.hint(); t.hint(); t.hint()
    out = capsys.readouterr().out
    assert "Hint 2/3" in out and "Hint 3/3" not in out and "turned off" in out
    monkeypatch.setenv("MMKIT_RELEASE_HINTS", "")
    with pytest.raises(ReleaseModeError):
        t.hint()


def test_config_file_next_to_the_notebooks(monkeypatch, tmp_path):
    """An mmkit-release.toml in the working directory turns release mode on, with its hint tiers and contact."""
    monkeypatch.delenv("MMKIT_RELEASE", raising=False)
    monkeypatch.delenv("MMKIT_RELEASE_CONFIG", raising=False)
    monkeypatch.delenv("MMKIT_RELEASE_HINTS", raising=False)
    monkeypatch.delenv("MMKIT_RELEASE_CONTACT", raising=False)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jcfg"))
    monkeypatch.chdir(tmp_path)
    assert release.status(config_paths=[str(tmp_path / release.CONFIG_NAME)]).enabled is False
    (tmp_path / release.CONFIG_NAME).write_text(
        '[release]\nenabled = true\nhints = [1, 2]\ncontact = "Dr Example (room 1.23)"\n')
    st = release.status()
    assert st.enabled and st.hints == (1, 2) and st.source.endswith(release.CONFIG_NAME)
    with pytest.raises(ReleaseModeError, match=r"Dr Example \(room 1\.23\)"):
        generate("cow", seed=1).answer_key()
    # the environment wins over the file in both directions
    monkeypatch.setenv("MMKIT_RELEASE", "0")
    assert generate("cow", seed=1).answer_key() is not None
    (tmp_path / release.CONFIG_NAME).write_text("[release]\nenabled = yes\n")
    monkeypatch.delenv("MMKIT_RELEASE")
    with pytest.raises(ReleaseModeError, match="not valid TOML"):
        release.status()


def test_config_in_jupyter_config_dir(monkeypatch, tmp_path):
    """The file is also found in $JUPYTER_CONFIG_DIR, and a bad MMKIT_RELEASE value is refused clearly."""
    for v in ("MMKIT_RELEASE", "MMKIT_RELEASE_CONFIG", "MMKIT_RELEASE_HINTS", "MMKIT_RELEASE_CONTACT"):
        monkeypatch.delenv(v, raising=False)
    cfg = tmp_path / "jcfg"
    cfg.mkdir()
    (cfg / release.CONFIG_NAME).write_text("[release]\nenabled = true\n")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(cfg))
    monkeypatch.chdir(tmp_path)
    assert release.enabled()
    monkeypatch.setenv("MMKIT_RELEASE", "maybe")
    with pytest.raises(ReleaseModeError, match="MMKIT_RELEASE must be 1 or 0"):
        release.enabled()


def test_command_line_answers_refused(tmp_path):
    """python -m mmkit.exercises -c exits non-zero with the release message; without -c it prints the question."""
    env = {"MMKIT_RELEASE": "1", "MMKIT_RELEASE_CONFIG": str(tmp_path / "none.toml"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "mmkit.exercises", "-k", "cow", "-s", "7", "-c"], env=env,
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 3 and "Release mode is on" in r.stderr and "Answer" not in r.stdout
    r = subprocess.run([sys.executable, "-m", "mmkit.exercises", "-k", "cow", "-s", "7"], env=env,
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "seed=7" in r.stdout


def test_private_twins_hidden(on, monkeypatch):
    """The underscore twins of the blocked calls (q._answer_key(), q._walkthrough_text(), q._all_hints(), q._run, the checkers' _letter/_program...) raise ReleaseModeError; check() still judges."""
    monkeypatch.setenv("MMKIT_RELEASE_HINTS", "1,2")
    q = generate("cow", seed=1)
    calls = [q._answer_key, q._walkthrough_text, q._walkthrough_rows, q._all_hints, q._state_hint, q._model_run,
             q._explanation, q._solution, q._last_trace, lambda: q._evaluate("copy"),
             lambda: q._alt_value("mapcount_reuse", q.parts[0]),
             lambda: q._run, lambda: q._hints, lambda: q._source, lambda: q._alt_runs]
    inv = generate("cow", seed=3, form="inverse")
    build = generate("cow", seed=3, form="build")
    calls += [lambda: inv._checker._letter, lambda: inv._checker._states, inv._checker.key,
              lambda: inv._checker.solution_text(inv), lambda: inv._checker.hint3(inv),
              lambda: inv._checker.evaluate(inv, "A"), lambda: inv._source,
              lambda: build._checker._program, build._checker.key, lambda: build._checker.solution_text(build)]
    for call in calls:
        with pytest.raises(ReleaseModeError) as e:
            call()
        assert "Release mode is on" in str(e.value)
    assert len(q.hints()) == 2 and q.evaluate("reuse")[0] in (True, False)
    assert inv.evaluate("A")[0] in (True, False)


def test_lab_task_private_twins_hidden(on):
    """A lab task's _hints and _judge raise in release mode; check() still judges."""
    t = tasks.eras_task("fork; C pins R/O; P writes", "no_leak")
    for get in (lambda: t._hints, lambda: t._judge):
        with pytest.raises(ReleaseModeError):
            get()
    assert t.evaluate("nonsense")[0] in (None, False)


def test_verdict_only_feedback(on, monkeypatch, tmp_path):
    """With feedback = "verdict" (environment or mmkit-release.toml) check() says only right or wrong: no part names, no misconception, no per-part record, and grading.score refuses outside the autograder."""
    monkeypatch.setenv("MMKIT_RELEASE", "0")
    q = predict("fork", after="fork", fields=("refcount", "mapcount"), who="parent")
    right = q.answer_key()
    wrong = (right[0] + 5, right[1])
    full = q.evaluate(wrong)[1]
    assert any("refcount" in m for m in full)
    monkeypatch.setenv("MMKIT_RELEASE", "1")
    monkeypatch.setenv("MMKIT_RELEASE_FEEDBACK", "verdict")
    assert release.status().feedback == "verdict" and release.verdict_only()
    ok, msgs = q.evaluate(wrong)
    assert ok is False and len(msgs) == 1 and "refcount" not in msgs[0] and "mapcount" not in msgs[0]
    assert q.check(wrong) is False and q.attempts[-1]["verdicts"] == {}
    assert q.evaluate(right) == (True, ["Correct."])
    inv = generate("cow", seed=3, form="inverse")
    assert len(inv.evaluate("A")[1]) == 1 and len(inv.evaluate("B")[1]) == 1
    import mmkit.grading as grading
    with pytest.raises(ReleaseModeError):
        grading.score(q, wrong)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert grading.score(q, wrong) == 0.5
    monkeypatch.delenv("NBGRADER_EXECUTION")
    # the same from the config file
    monkeypatch.delenv("MMKIT_RELEASE")
    monkeypatch.delenv("MMKIT_RELEASE_FEEDBACK")
    cfg = tmp_path / "mmkit-release.toml"
    cfg.write_text('[release]\nenabled = true\nfeedback = "verdict"\n')
    monkeypatch.setenv("MMKIT_RELEASE_CONFIG", str(cfg))
    assert release.verdict_only() and len(q.evaluate(wrong)[1]) == 1
    cfg.write_text('[release]\nenabled = true\nfeedback = "some"\n')
    with pytest.raises(ReleaseModeError):
        release.status()
    # lab tasks too
    cfg.write_text('[release]\nenabled = true\nfeedback = "verdict"\n')
    t = tasks.eras_task("fork; C pins R/O; P writes", "no_leak")
    ok, msgs = t.evaluate("5.7")
    assert ok is not None and len(msgs) == 1
