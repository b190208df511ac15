"""Fixtures for the real-browser tests: JupyterLab and Voilà on 127.0.0.1,
driven by Playwright with Debian's chromium (never a downloaded browser).

Everything runs in a temporary folder: the notebooks are copied there (Lab
autosaves; executed outputs must never land in the repository) and the
Jupyter config, data and runtime folders point there too.  Without
``/usr/bin/chromium`` (or without Playwright) every test here skips with
the reason.
"""

import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MMKIT_CHROMIUM", "/usr/bin/chromium")   # overridable for the honesty test
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


HERE = pathlib.Path(__file__).resolve().parent
JUPYTER_CONFIG = ROOT / "jupyter-config"     # what `make lab` uses: no news pop-up, no update check


def browser_missing():
    """Why the browser tests cannot run here, or None when they can."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not importable (pip install playwright; no browser download needed)"
    return None


def pytest_collection_modifyitems(config, items):
    """Mark (and, without a browser, skip) the tests of this folder only.

    A conftest hook receives every item of the session, so it must pick out
    its own: a skip here must never reach the unit, notebook or live tests.
    """
    reason = browser_missing()
    for item in items:
        if HERE not in pathlib.Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.e2e)
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"browser test: {reason}"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.25)
    raise RuntimeError(f"server not ready after {timeout} s: {url}")


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """A private copy of the notebooks and private Jupyter folders."""
    d = tmp_path_factory.mktemp("e2e")
    nbs = d / "notebooks"
    shutil.copytree(ROOT / "notebooks", nbs, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    # render every cell (no windowing), so widgets far down a long notebook are in the DOM
    tracker = d / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(d / "config"), JUPYTER_RUNTIME_DIR=str(d / "runtime"),
               JUPYTER_DATA_DIR=str(d / "data"), IPYTHONDIR=str(d / "ipython"), PYTHONUNBUFFERED="1",
               JUPYTER_CONFIG_PATH=str(JUPYTER_CONFIG))
    return {"dir": d, "notebooks": nbs, "env": env}


@pytest.fixture(scope="session")
def lab(workdir):
    """JupyterLab on 127.0.0.1 with a random token; yields its base URL and token."""
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={workdir['notebooks']}", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(workdir["dir"] / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=workdir["env"], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        yield {"url": f"http://127.0.0.1:{port}", "token": token}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="session")
def voila(workdir):
    """Voilà serving the notebooks folder on 127.0.0.1 (as `make present` does for one notebook)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
           "--Voila.port_retries=0", "--theme=light"]
    log = open(workdir["dir"] / "voila.log", "w")
    proc = subprocess.Popen(cmd, env=workdir["env"], cwd=workdir["notebooks"], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/voila/static/voila.js", proc)
        yield {"url": f"http://127.0.0.1:{port}"}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()
