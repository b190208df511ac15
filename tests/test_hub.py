"""The workshop hub (hub/, `make hub`): two students on loopback, end to end.

One hub is started in a temporary folder on free 127.0.0.1 ports (hub/workshop.py's Hub,
which stops the hub and kills every process it started even when a test fails); two
students log in through the login form, get their servers from the hub's REST API and run
notebook cells over the kernel websocket.  It skips, saying why, without Node.js (the
proxy) or when configurable-http-proxy cannot be installed once; `make bench-hub` is the
30-student load test.
"""

import pathlib
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hub"))

pytest.importorskip("jupyterhub", reason="jupyterhub not installed (pip install -e '.[hub]')")
pytest.importorskip("jupyterhub_idle_culler", reason="jupyterhub-idle-culler not installed (pip install -e '.[hub]')")
pytest.importorskip("websocket", reason="websocket-client not installed (pip install -e '.[hub]')")

import workshop  # noqa: E402

NOTEBOOK = "00-orientation.ipynb"
PROBE = "import os, json; print(json.dumps([os.getcwd(), os.getuid(), os.environ.get('MMKIT_RELEASE')]))"


@pytest.fixture(scope="module")
def proxy():
    try:
        return workshop.proxy_command(log=lambda msg: None)
    except workshop.Missing as e:
        pytest.skip(f"workshop hub: {e}")


@pytest.fixture(scope="module")
def hub(proxy):
    with workshop.Hub(cull_timeout=600) as running:
        yield running


def _first_code_cell(student):
    return next(c for c in student.notebook(NOTEBOOK)["cells"] if c["cell_type"] == "code")


def test_wrong_password_is_refused(hub):
    """The login form refuses a student who does not give the class password."""
    with pytest.raises(PermissionError):
        workshop.Student(hub, "mallory", password="not-the-class-password").login()


def test_two_students_run_cells_in_their_own_copies(hub):
    """Two students log in, get servers, run 00's first cell and a probe in their own copy of the notebooks, in release mode."""
    students = [workshop.Student(hub, name).login() for name in ("alice", "bob")]
    errors = []

    def start(s):
        try:
            s.start()
        except Exception as e:                      # reported below, in the test's thread
            errors.append(f"{s.name}: {e!r}")

    threads = [threading.Thread(target=start, args=(s,)) for s in students]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, f"{errors}\n{hub.log_tail()}"

    seen = {}
    for s in students:
        with s.kernel(NOTEBOOK) as k:
            reply = k.execute("".join(_first_code_cell(s)["source"]), timeout=120)
            assert reply["status"] == "ok", reply
            reply = k.execute(PROBE, timeout=60)
            assert reply["status"] == "ok", reply
            import json
            seen[s.name] = json.loads("".join(k.stdout))
            # a file the student writes lands in their copy only
            assert k.execute(f"open('mine.txt', 'w').write({s.name!r})", timeout=60)["status"] == "ok"

    homes = hub.state / "homes"
    for name, (cwd, uid, release) in seen.items():
        assert pathlib.Path(cwd) == homes / name / "notebooks"
        assert release == "1"
        assert (homes / name / "notebooks" / "mine.txt").read_text() == name
    assert not (ROOT / "notebooks" / "mine.txt").exists()
    # each sees their own file through their own server, not the other's
    for s in students:
        assert s.api("GET", "/contents/mine.txt", params={"content": "1"})["content"] == s.name

    mode = (hub.state / "students-run-as").read_text().strip()
    uids = {name: uid for name, (cwd, uid, release) in seen.items()}
    if mode == "uid-per-student":
        assert 0 not in uids.values() and len(set(uids.values())) == 2
    else:                                           # Python unreachable by other uids: see hub/README.md
        assert mode in ("root", "hub-user")

    for s in students:
        s.stop()
    assert not any(s.ready() for s in students)


def test_idle_culler_runs_as_a_hub_service(hub):
    """The idle culler runs beside the hub as its service, and the proxy is configurable-http-proxy."""
    cmdlines = [" ".join(p.cmdline()) for p in hub.processes()]
    assert any("jupyterhub_idle_culler" in c and "--timeout=600" in c for c in cmdlines), cmdlines
    assert any("configurable-http-proxy" in c and "127.0.0.1" in c for c in cmdlines), cmdlines


def test_stopping_the_hub_leaves_nothing(proxy):
    """After the hub stops (here with a student's server still running) no process it started is left and its folder is gone."""
    with workshop.Hub() as h:
        workshop.Student(h, "carol").login().start()
        started = h.processes()
        assert len(started) >= 3                    # proxy, culler, carol's server
    assert not [p for p in started if p.is_running()]
    assert not h.state.exists()
