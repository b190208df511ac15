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

import workshop  # noqa: E402

NOTEBOOK = "00-orientation.ipynb"
PROBE = ("import os, json, mmkit.release; "
         "print(json.dumps([os.getcwd(), os.getuid(), os.environ.get('MMKIT_RELEASE'), mmkit.release.enabled()]))")


@pytest.fixture(scope="module")
def proxy():
    for module, package in (("jupyterhub", "jupyterhub"), ("jupyterhub_idle_culler", "jupyterhub-idle-culler"),
                            ("websocket", "websocket-client"), ("psutil", "psutil")):
        pytest.importorskip(module, reason=f"workshop hub: {package} not installed (pip install -e '.[hub]')")
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
    """Two students log in, get servers, run 00's first cell and a probe in their own copy of the notebooks, with the kit's release mode on."""
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
    for name, (cwd, uid, release, hidden) in seen.items():
        assert pathlib.Path(cwd) == homes / name / "notebooks"
        assert release == "1" and hidden is True          # the kit's student release mode is on
        assert (homes / name / "notebooks" / "mine.txt").read_text() == name
    assert not (ROOT / "notebooks" / "mine.txt").exists()
    # each sees their own file through their own server, not the other's
    for s in students:
        assert s.api("GET", "/contents/mine.txt", params={"content": "1"})["content"] == s.name

    mode = (hub.state / "students-run-as").read_text().strip()
    uids = {name: uid for name, (cwd, uid, *_) in seen.items()}
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


# -- past one machine: zero-to-jupyterhub values and the repo2docker/Binder layout ----------------
Z2JH = ROOT / "hub" / "z2jh"
BINDER = ROOT / "binder"


def _values():
    yaml = pytest.importorskip("yaml", reason="pyyaml not installed (pip install -e '.[hub]')")
    return yaml.safe_load((Z2JH / "values.yaml").read_text())


def test_z2jh_values_use_only_keys_of_the_chart():
    """hub/z2jh/values.yaml parses and every key it sets is one of z2jh chart 4.x's, with the chart's types."""
    import os
    import yaml
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema not installed (pip install -e '.[hub]')")
    values = _values()
    jsonschema.validate(values, yaml.safe_load((Z2JH / "schema-subset.yaml").read_text()))
    full = os.environ.get("MMKIT_Z2JH_SCHEMA")           # the chart's own values.schema.json, if at hand
    if full:
        import json
        schema = json.loads(pathlib.Path(full).read_text())
        jsonschema.validate(values, {**schema, "required": []})


def test_z2jh_values_carry_the_measured_sizing_and_the_release_mode():
    """The students' memory guarantee and limit, placeholders and release mode in values.yaml are those sizing.py derives from the measured load test."""
    sys.path.insert(0, str(Z2JH))
    import json
    import sizing
    values = _values()
    s = sizing.size(json.loads((Z2JH / "measured.json").read_text()))
    user = values["singleuser"]
    assert user["memory"] == {"guarantee": s["guarantee"], "limit": s["limit"]}
    assert user["cpu"] == {"guarantee": s["cpu_guarantee"], "limit": s["cpu_limit"]}
    assert values["scheduling"]["userPlaceholder"]["replicas"] == s["placeholders"]
    assert str(user["extraEnv"]["MMKIT_RELEASE"]) == "1"
    assert values["cull"]["enabled"] is True
    url = user["defaultUrl"].removeprefix("/lab/tree/")
    assert (ROOT / url).exists(), url                    # start copies notebooks/ into the home


def test_binder_environment_has_the_packages_of_pyproject():
    """binder/environment.yml installs every runtime and 'lab' dependency of pyproject.toml, pins Python, and brings jupyterhub-singleuser 5 for the chart's hub."""
    import re
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    yaml = pytest.importorskip("yaml", reason="pyyaml not installed (pip install -e '.[hub]')")
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    name = lambda spec: re.split(r"[<>=!\[ ]", spec, maxsplit=1)[0].lower()       # noqa: E731
    have = {name(d) for d in deps}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {name(d) for d in project["dependencies"] + project["optional-dependencies"]["lab"]}
    assert wanted <= have, wanted - have
    assert any(re.fullmatch(r"python=3\.\d+", d) for d in deps)
    assert "jupyterhub-singleuser>=5.2,<6" in deps


def test_binder_start_copies_the_notebooks_once_and_runs_the_command(tmp_path):
    """binder/start gives an empty home the notebooks, keeps a student's changes on the next start, and execs its command."""
    import os
    import shutil
    import subprocess
    share = tmp_path / "share"
    shutil.copytree(ROOT / "notebooks", share / "notebooks")
    (share / "jupyter-config").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), MMKIT_SHARE=str(share))
    out = subprocess.run([str(BINDER / "start"), "sh", "-c", 'echo "$JUPYTER_CONFIG_PATH"'], env=env,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split(":")[0].strip() == str(share / "jupyter-config")
    assert sorted(p.name for p in (home / "notebooks").iterdir()) == sorted(p.name for p in (ROOT / "notebooks").iterdir())
    (home / "notebooks" / "00-orientation.ipynb").write_text("student's work")
    subprocess.run([str(BINDER / "start"), "true"], env=env, timeout=30, check=True)
    assert (home / "notebooks" / "00-orientation.ipynb").read_text() == "student's work"
    for script in ("postBuild", "start"):
        assert os.access(BINDER / script, os.X_OK)
        subprocess.run(["bash", "-n", str(BINDER / script)], check=True, timeout=30)
