"""The workshop hub (hub/, `make hub`): two students on loopback, end to end.

One hub is started in a temporary folder on free 127.0.0.1 ports (hub/workshop.py's Hub,
which stops the hub and kills every process it started even when a test fails); two
students log in through the login form, get their servers from the hub's REST API and run
notebook cells over the kernel websocket.  It skips, saying why, without Node.js (the
proxy) or when configurable-http-proxy cannot be installed once; `make bench-hub` is the
30-student load test.  Without a hub: the login settings (hub/hub_auth.py), the config file in
each mode, and the notebook sync (hub/notebook_sync.py) on scratch folders.
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
    with workshop.Hub(cull_timeout=600, env={"MMKIT_HUB_USERS": "alice,bob,carol"}) as running:
        yield running


def _first_code_cell(student):
    return next(c for c in student.notebook(NOTEBOOK)["cells"] if c["cell_type"] == "code")


def test_wrong_password_is_refused(hub):
    """The login form refuses a student who does not give the class password."""
    with pytest.raises(PermissionError):
        workshop.Student(hub, "mallory", password="not-the-class-password").login()


def test_a_name_not_on_the_allow_list_is_refused_and_the_login_page_says_workshop(hub):
    """With MMKIT_HUB_USERS set, a mistyped name is refused even with the class password, and the login page announces a workshop hub."""
    with pytest.raises(PermissionError):
        workshop.Student(hub, "alcie").login()
    import requests
    page = requests.get(f"{hub.url}/hub/login", timeout=30).text
    assert "WORKSHOP hub" in page and "Not for graded work" in page


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


def test_students_servers_cull_idle_kernels(hub):
    """A student's server is started with MappingKernelManager's idle-kernel culler (30 min, also for kernels with a tab open)."""
    s = workshop.Student(hub, "carol").login().start()
    try:
        cmdlines = [" ".join(p.cmdline()) for p in hub.processes() if p.is_running()]
        server = [c for c in cmdlines if "jupyterhub-singleuser" in c]
        assert server and "--MappingKernelManager.cull_idle_timeout=1800" in server[0], cmdlines
        assert "--MappingKernelManager.cull_connected=True" in server[0]
    finally:
        s.stop()


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
    """The students' memory guarantee and limit, placeholders and release mode in values.yaml are those sizing.py derives from the measured load tests (class, labs, several kernels open)."""
    sys.path.insert(0, str(Z2JH))
    import sizing
    values = _values()
    s = sizing.size(sizing.load(sizing.MEASURED), labs=sizing.load(sizing.LABS), kernels=sizing.load(sizing.KERNELS))
    assert s["measured_rss_max_kernels_open_mib"] is not None         # the several-kernels run is there
    user = values["singleuser"]
    assert user["memory"] == {"guarantee": s["guarantee"], "limit": s["limit"]}
    assert user["cpu"] == {"guarantee": s["cpu_guarantee"], "limit": s["cpu_limit"]}
    assert values["scheduling"]["userPlaceholder"]["replicas"] == s["placeholders"]
    assert str(user["extraEnv"]["MMKIT_RELEASE"]) == "1"
    assert values["cull"]["enabled"] is True
    assert "--MappingKernelManager.cull_idle_timeout=1800" in user["cmd"]     # idle kernels too
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
    """binder/start gives an empty home the notebooks, keeps a student's changes on the next start (a newer version goes beside them), and execs its command."""
    import os
    import shutil
    import subprocess
    share = tmp_path / "share"
    shutil.copytree(ROOT / "notebooks", share / "notebooks")
    (share / "jupyter-config").mkdir()
    shutil.copy(ROOT / "hub" / "notebook_sync.py", share)      # as binder/postBuild does
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), MMKIT_SHARE=str(share))
    out = subprocess.run([str(BINDER / "start"), "sh", "-c", 'echo "$JUPYTER_CONFIG_PATH"'], env=env,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split(":")[0].strip() == str(share / "jupyter-config")
    copied = sorted(p.name for p in (home / "notebooks").iterdir() if not p.name.startswith("."))
    assert copied == sorted(p.name for p in (ROOT / "notebooks").iterdir() if not p.name.startswith("."))
    (home / "notebooks" / "00-orientation.ipynb").write_text("student's work")
    subprocess.run([str(BINDER / "start"), "true"], env=env, timeout=30, check=True)
    assert (home / "notebooks" / "00-orientation.ipynb").read_text() == "student's work"
    assert not (home / "notebooks" / "00-orientation.updated.ipynb").exists()   # nothing newer yet
    (share / "notebooks" / "00-orientation.ipynb").write_text("the lecturer's fix")
    (share / "notebooks" / "01-fork.ipynb").write_text("the lecturer's fix of 01")
    subprocess.run([str(BINDER / "start"), "true"], env=env, timeout=30, check=True)
    assert (home / "notebooks" / "00-orientation.ipynb").read_text() == "student's work"
    assert (home / "notebooks" / "00-orientation.updated.ipynb").read_text() == "the lecturer's fix"
    assert (home / "notebooks" / "01-fork.ipynb").read_text() == "the lecturer's fix of 01"
    for script in ("postBuild", "start"):
        assert os.access(BINDER / script, os.X_OK)
        subprocess.run(["bash", "-n", str(BINDER / script)], check=True, timeout=30)


# -- who may log in (hub/hub_auth.py) and the config file, without starting a hub ------------------
import hub_auth  # noqa: E402
import notebook_sync  # noqa: E402

PASSWORD = "class-password-2026"
GITHUB = {"MMKIT_HUB_AUTH": "oauth", "MMKIT_HUB_OAUTH_CLIENT_ID": "id", "MMKIT_HUB_OAUTH_CLIENT_SECRET": "secret",
          "MMKIT_HUB_OAUTH_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback"}


def _run(coro):
    """Run a coroutine to its end in a fresh event loop of its own thread: another test of the
    session (nbclient, Playwright) may have left a loop running in this one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(60)


def _login(env, name, password=PASSWORD):
    """What SharedPasswordAuthenticator, configured by hub_auth.settings(env), makes of a login."""
    import asyncio
    from traitlets.config import Config
    conf = hub_auth.settings(env)
    cls = hub_auth.authenticator_class(conf)
    auth = cls(config=Config({k: v for k, v in conf.items() if k != "JupyterHub"}))
    got = _run(auth.get_authenticated_user(None, {"username": name, "password": password}))
    return got and got["name"]


def test_shared_password_accepts_any_name_without_an_allow_list():
    """Without an allow-list the workshop hub lets any name in with the class password (and the startup line says so)."""
    env = {"MMKIT_HUB_PASSWORD": PASSWORD}
    assert _login(env, "anyone") == "anyone"
    assert _login(env, "anyone", "wrong-password") is None
    assert "ANY name" in hub_auth.describe(env) and "not for graded work" in hub_auth.describe(env)


def test_shared_password_allow_list_refuses_a_mistyped_name(tmp_path):
    """With MMKIT_HUB_USERS or a names file only listed names (case-insensitive) get in; the admin stays allowed."""
    names = tmp_path / "class.txt"
    names.write_text("# CS 101\nAlice\nbob  # late\n\n")
    for env in ({"MMKIT_HUB_USERS": "alice, Bob"}, {"MMKIT_HUB_USERS_FILE": str(names)}):
        env = dict(env, MMKIT_HUB_PASSWORD=PASSWORD, MMKIT_HUB_ADMIN_PASSWORD="a" * 32)
        assert hub_auth.allowed_users(env) == {"alice", "bob"}
        assert _login(env, "Alice") == "alice"
        assert _login(env, "alcie") is None
        assert _login(env, "lecturer", "a" * 32) == "lecturer"
    with pytest.raises(SystemExit, match="names nobody"):
        hub_auth.settings({"MMKIT_HUB_PASSWORD": PASSWORD, "MMKIT_HUB_USERS": " , "})
    with pytest.raises(SystemExit, match="MMKIT_HUB_USERS_FILE"):
        hub_auth.settings({"MMKIT_HUB_PASSWORD": PASSWORD, "MMKIT_HUB_USERS_FILE": str(tmp_path / "none")})


def test_oauth_mode_names_each_missing_setting():
    """MMKIT_HUB_AUTH=oauth refuses to start without client id/secret/callback, an https callback, or a rule for who may log in."""
    with pytest.raises(SystemExit, match="MMKIT_HUB_OAUTH_CLIENT_ID, MMKIT_HUB_OAUTH_CLIENT_SECRET"):
        hub_auth.settings({"MMKIT_HUB_AUTH": "oauth"})
    with pytest.raises(SystemExit, match="say who may log in"):
        hub_auth.settings(GITHUB)
    with pytest.raises(SystemExit, match="use https"):
        hub_auth.settings(dict(GITHUB, MMKIT_HUB_OAUTH_ALLOW_ALL="1",
                               MMKIT_HUB_OAUTH_CALLBACK_URL="http://hub.example.org/hub/oauth_callback"))
    with pytest.raises(SystemExit, match="AUTHORIZE_URL"):
        hub_auth.settings(dict(GITHUB, MMKIT_HUB_OAUTH_PROVIDER="generic", MMKIT_HUB_USERS="alice"))
    with pytest.raises(SystemExit, match="use one of shared, oauth"):
        hub_auth.settings({"MMKIT_HUB_AUTH": "lti"})


@pytest.mark.parametrize("provider", ["github", "generic"])
def test_oauth_mode_resolves_and_configures_the_authenticator(provider):
    """A complete oauth setting resolves oauthenticator's class and configures it (course list as allowed users), without network."""
    pytest.importorskip("oauthenticator", reason="oauthenticator not installed (pip install oauthenticator)")
    from traitlets.config import Config
    env = dict(GITHUB, MMKIT_HUB_OAUTH_PROVIDER=provider, MMKIT_HUB_USERS="alice,bob", MMKIT_HUB_ADMINS="prof",
               MMKIT_HUB_OAUTH_AUTHORIZE_URL="https://sso.example.org/auth",
               MMKIT_HUB_OAUTH_TOKEN_URL="https://sso.example.org/token",
               MMKIT_HUB_OAUTH_USERDATA_URL="https://sso.example.org/userinfo")
    conf = hub_auth.settings(env)
    cls = hub_auth.authenticator_class(conf)
    assert cls.__name__ == {"github": "GitHubOAuthenticator", "generic": "GenericOAuthenticator"}[provider]
    auth = cls(config=Config({k: v for k, v in conf.items() if k != "JupyterHub"}))
    assert (auth.client_id, auth.client_secret) == ("id", "secret")
    assert auth.allowed_users == {"alice", "bob"} and auth.allow_all is False and auth.admin_users == {"prof"}
    import asyncio
    model = lambda name: {"name": name, "admin": None, "auth_state": {"scope": []}}   # noqa: E731
    assert _run(auth.check_allowed("alice", model("alice"))) is True
    assert not _run(auth.check_allowed("mallory", model("mallory")))
    assert "proves who they are" in hub_auth.describe(env)


def _load_config(monkeypatch, tmp_path, **env):
    from traitlets.config.loader import PyFileConfigLoader
    monkeypatch.setenv("MMKIT_HUB_STATE", str(tmp_path))
    monkeypatch.setenv("MMKIT_HUB_PROXY_COMMAND", "node\x1fchp")
    monkeypatch.setenv("MMKIT_HUB_PASSWORD", PASSWORD)
    import os
    for k in [k for k in os.environ if k.startswith("MMKIT_HUB_")]:
        if k not in ("MMKIT_HUB_STATE", "MMKIT_HUB_PROXY_COMMAND", "MMKIT_HUB_PASSWORD"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "hub")).load_config()


def test_config_file_loads_in_each_mode(monkeypatch, tmp_path):
    """hub/jupyterhub_config.py loads: loopback by default, MMKIT_HUB_IP for the proxy, the workshop banner in shared mode, oauth's class when asked."""
    c = _load_config(monkeypatch, tmp_path)
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.JupyterHub.authenticator_class == "shared-password" and c.Authenticator.allow_all is True
    assert "WORKSHOP hub" in c.JupyterHub.template_vars["announcement"]
    c = _load_config(monkeypatch, tmp_path, MMKIT_HUB_IP="0.0.0.0", MMKIT_HUB_USERS="alice")
    assert c.JupyterHub.ip == "0.0.0.0" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.Authenticator.allowed_users == {"alice"} and c.Authenticator.allow_all is False
    c = _load_config(monkeypatch, tmp_path, **dict(GITHUB, MMKIT_HUB_OAUTH_ORGS="my-course-org"))
    assert c.JupyterHub.authenticator_class == "oauthenticator.github.GitHubOAuthenticator"
    assert c.GitHubOAuthenticator.allowed_organizations == {"my-course-org"}
    assert "template_vars" not in c.JupyterHub
    with pytest.raises(SystemExit, match="say who may log in"):
        _load_config(monkeypatch, tmp_path, **GITHUB)


# -- keeping students' copies of the notebooks up to date (hub/notebook_sync.py) --------------------
def test_sync_copies_new_and_untouched_notebooks_and_keeps_edited_ones(tmp_path):
    """On each spawn new notebooks are copied, untouched copies follow the lecturer's fix, an edited one is kept and the fix goes beside it as .updated.ipynb, once."""
    src, mine = tmp_path / "notebooks", tmp_path / "home" / "notebooks"
    src.mkdir()
    (src / "00.ipynb").write_text("v1 of 00")
    (src / "01.ipynb").write_text("v1 of 01")
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".ipynb_checkpoints" / "00-checkpoint.ipynb").write_text("x")
    assert notebook_sync.sync(src, mine)["copied"] == ["00.ipynb", "01.ipynb"]
    assert not (mine / ".ipynb_checkpoints").exists()

    (mine / "01.ipynb").write_text("the student's answers")          # the student works in 01
    (src / "00.ipynb").write_text("v2 of 00")                         # the lecturer fixes both
    (src / "01.ipynb").write_text("v2 of 01")
    (src / "02.ipynb").write_text("v1 of 02")                         # and adds a notebook
    done = notebook_sync.sync(src, mine)
    assert done == {"copied": ["02.ipynb"], "updated": ["00.ipynb"], "offered": ["01.ipynb"], "kept": []}
    assert (mine / "00.ipynb").read_text() == "v2 of 00"
    assert (mine / "01.ipynb").read_text() == "the student's answers"
    assert (mine / "01.updated.ipynb").read_text() == "v2 of 01"
    assert "`01.updated.ipynb`" in (mine / "UPDATES.md").read_text()

    (mine / "01.updated.ipynb").unlink()                              # read, merged, deleted
    assert notebook_sync.sync(src, mine)["kept"] == ["01.ipynb"]      # not offered again ...
    assert not (mine / "01.updated.ipynb").exists()
    (src / "01.ipynb").write_text("v3 of 01")                         # ... until there is a newer one
    assert notebook_sync.sync(src, mine)["offered"] == ["01.ipynb"]
    assert (mine / "01.updated.ipynb").read_text() == "v3 of 01"
    assert (mine / "01.ipynb").read_text() == "the student's answers"

    (mine / "00.ipynb").unlink()                                      # deleting gets a fresh copy
    assert notebook_sync.sync(src, mine)["copied"] == ["00.ipynb"]


def test_sync_adopts_copies_made_before_the_manifest(tmp_path):
    """A home copied by the old first-spawn-only code: identical files are adopted, different ones count as the student's edits."""
    src, mine = tmp_path / "notebooks", tmp_path / "home"
    src.mkdir()
    mine.mkdir()
    for name, text in (("00.ipynb", "v1"), ("01.ipynb", "v1")):
        (src / name).write_text(text)
    (mine / "00.ipynb").write_text("v1")
    (mine / "01.ipynb").write_text("edited")
    assert notebook_sync.sync(src, mine) == {"copied": [], "updated": [], "offered": ["01.ipynb"], "kept": []}
    (src / "00.ipynb").write_text("v2")
    assert notebook_sync.sync(src, mine)["updated"] == ["00.ipynb"]


def test_sync_on_the_real_notebooks_is_idempotent(tmp_path):
    """Syncing the kit's notebooks/ twice copies everything once and then nothing."""
    first = notebook_sync.sync(ROOT / "notebooks", tmp_path / "nb")
    assert "00-orientation.ipynb" in first["copied"]
    assert notebook_sync.sync(ROOT / "notebooks", tmp_path / "nb") == {"copied": [], "updated": [], "offered": [], "kept": []}
