"""Recorded live runs: the package ships every conformance scenario's live
side recorded on a real kernel, and the notebooks' live cells show it,
marked "recorded on Linux ...", wherever the live backend cannot run.
"""

import json
import os
import pathlib
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARK = re.compile(r"recorded on Linux \d+\.\d+(\.\d+)? \([\w-]+, \d{4}-\d\d-\d\d\)")
NOBODY = 65534


def test_recording_is_shipped_as_package_data():
    """A linux-*.json recording sits in mmkit/live/recorded and pyproject ships it as package data."""
    from mmkit.live.recorded import recordings
    files = recordings()
    assert files and all(f.parent == ROOT / "mmkit" / "live" / "recorded" for f in files)
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"mmkit\.live"\s*=\s*\[[^\]]*"recorded/\*\.json"', text), "package-data lacks recorded/*.json"


def test_recording_covers_every_scenario_and_agrees_with_the_model():
    """The newest recording has kernel version, architecture and date, every
    conformance scenario and large-folio topic (or the error its live side raised), every scenario
    a notebook's live cell shows, and those, like every scenario that agreed
    when recorded, agree with the model as it is now (else: re-record with
    `python -m mmkit.live record`, or fix the model)."""
    from mmkit.live.record import recorded_scenarios as default_scenarios
    from mmkit.live.recorded import recording
    rec = recording()
    assert MARK.fullmatch(rec.mark), rec.mark
    assert rec.data["kernel"] and rec.data["machine"] and rec.data["date"]
    names = [sc.name for sc in default_scenarios()]
    failed = {e["name"] for e in rec.data.get("errors", [])}
    missing = [n for n in names if n not in rec.scenarios and n not in failed]
    assert not missing, f"not recorded: {missing}; run `python -m mmkit.live record` as root"
    shown = set(re.findall(r'live_compare\(\\?"(\w+)\\?"', "".join(
        p.read_text() for p in (ROOT / "notebooks").glob("*.ipynb"))))
    assert shown and shown <= set(rec.scenarios), f"live cells without a recording: {shown - set(rec.scenarios)}"
    # what readers see agrees; what agreed when recorded still agrees with the model as it is now
    names = [n for n in names if n in rec.scenarios and (n in shown or rec.scenarios[n]["ok"])]
    bad = {n: rec.comparison(n).failures for n in names if not rec.comparison(n).ok}
    assert not bad, bad
    for sc in default_scenarios():                  # the steps recorded are the scenario's steps now
        if sc.name not in rec.scenarios:
            continue
        s = rec.scenarios[sc.name]
        steps = [st.name for st in sc.steps]
        recorded = [r["step"] for r in s["live"]]
        assert recorded == (steps[:len(recorded)] if s["unsupported"] else steps), sc.name


def test_recording_holds_no_physical_addresses():
    """PFNs are stored as 1, 2... per run side, so the file tells no physical address of the recording machine."""
    from mmkit.live.recorded import recording
    rec = recording()
    for s in rec.scenarios.values():
        for side in ("model", "live"):
            pfns = {c["pfn"] for r in s[side] for c in r["cells"].values() if c["pfn"] is not None}
            assert pfns <= set(range(1, len(pfns) + 1)), (s["name"], side, pfns)


def test_recorded_result_reads_like_a_live_result():
    """recorded_result() gives the side-by-side table, the reason nothing ran here and the "recorded on" mark."""
    from mmkit.live.recorded import recorded_result
    r = recorded_result("vmsplice_child", "not root")
    assert r.ran is False and r.ok is True and r.reason == "not root"
    html = r._repr_html_()
    assert MARK.search(html) and 'data-recorded="true"' in html and "child reads the pipe" in html
    assert MARK.search(str(r)) and "b'old data'" in str(r)
    assert recorded_result("no such scenario", "not root") is None


def test_recorded_result_falls_back_when_the_file_is_damaged(tmp_path, monkeypatch):
    """A damaged recording gives None (the cell then says "skipped"), never an exception."""
    from mmkit.live.recorded import recorded_result
    bad = tmp_path / "linux-9.9.json"
    bad.write_text("{not json")
    monkeypatch.setenv("MMKIT_RECORDED", str(bad))
    assert recorded_result("fork", "not root") is None


_CHILD = r"""
import json, sys
from mmkit.notebook import live_compare
r = live_compare(sys.argv[1])
print(json.dumps({"uid": __import__("os").geteuid(), "html": r._repr_html_(), "text": str(r),
                  "ran": r.ran}))
"""


def _as_nobody_fork(scenario, env):
    """Fork, drop to uid/gid 65534 with no groups, call the notebook's live
    helper there, and send back what it shows.  No exec: this interpreter may
    live where uid 65534 cannot read it (a pyenv Python under /root)."""
    import mmkit.live.availability as availability
    import mmkit.notebook  # noqa: F401   everything the helper needs is imported before the drop
    from mmkit.live.recorded import recorded_result
    recorded_result("fork", "warm-up")               # imports the model, the scenarios, conformance
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                     # child: never returns into pytest
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.environ.update(env)
            availability._results.clear()            # a fresh process has not asked yet
            from mmkit.notebook import live_compare
            res = live_compare(scenario)
            out = {"uid": os.geteuid(), "html": res._repr_html_(), "text": str(res), "ran": res.ran}
            code = 0
        except BaseException as e:                   # report, never raise into the forked pytest
            out = {"error": f"{type(e).__name__}: {e}"}
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + 120
    try:
        while True:
            ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:                            # a hung child: stop it, report
                os.kill(pid, signal.SIGKILL)
                return {"error": "no answer from the uid 65534 child within 120 s"}
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"error": "no answer"}')


def test_notebook_live_cell_shows_the_recorded_run_to_a_non_root_user():
    """A user who is not root (uid 65534, as a student on a hub) calling the
    notebooks' live helper gets the run recorded on a real kernel, marked
    "recorded on Linux ...", instead of just "skipped"."""
    scenario = "cow_child_writes"
    tmp = tempfile.mkdtemp(prefix="mmkit-recorded-")
    try:
        os.chmod(tmp, 0o755)
        env = {"HOME": tmp, "MPLCONFIGDIR": tmp}
        from mmkit.live.recorded import recordings
        shipped = recordings()[0]
        if os.geteuid() != 0:                        # already not root: a plain fresh process
            p = subprocess.run([sys.executable, "-c", _CHILD, scenario], capture_output=True, text=True,
                               timeout=120, env=dict(os.environ, **env))
            assert p.returncode == 0, p.stderr
            out = json.loads(p.stdout.strip().splitlines()[-1])
        else:
            if not hasattr(os, "setresuid"):
                pytest.skip("cannot drop privileges: no setresuid() on this platform")
            # the checkout may sit where uid 65534 cannot read (under /root): then show it a copy
            if not _readable_by_nobody(shipped):
                copy = pathlib.Path(tmp) / shipped.name
                shutil.copy(shipped, copy)
                os.chmod(copy, 0o644)
                env["MMKIT_RECORDED"] = str(copy)
            out = _as_nobody_fork(scenario, env)
            if "error" in out and out["error"].startswith("PermissionError"):
                pytest.skip(f"cannot drop privileges to uid {NOBODY}: {out['error']}")
        assert "error" not in out, out
        assert out["uid"] != 0 and out["ran"] is False
        assert MARK.search(out["html"]) and MARK.search(out["text"]), out["html"][:500]
        assert "not root" in out["text"] and "child writes" in out["text"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _readable_by_nobody(path):
    p = pathlib.Path(path).resolve()
    st = p.stat()
    if not st.st_mode & 0o004:
        return False
    for d in p.parents:
        if not d.stat().st_mode & 0o001:
            return False
    return True


@pytest.mark.live
def test_record_command_writes_a_recording(tmp_path):
    """`python -m mmkit.live record -s fork -o FILE` (root, Linux) records that
    scenario with kernel release, architecture and date; elsewhere it refuses
    with the reason."""
    from mmkit.live import available
    ok, why = available()
    if not ok:
        pytest.skip(f"live kernel unavailable: {why}")
    out = tmp_path / "linux-test.json"
    p = subprocess.run([sys.executable, "-m", "mmkit.live", "record", "-s", "fork", "-o", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    data = json.loads(out.read_text())
    import platform
    assert data["kernel"] == platform.release() and data["machine"] == platform.machine()
    assert [s["name"] for s in data["scenarios"]] == ["fork"] and data["scenarios"][0]["ok"]
