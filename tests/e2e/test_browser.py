"""Real browser: the notebooks run in JupyterLab and in Voilà, the stepper
redraws when clicked, and the exercise checker answers in the page.

Wait conditions follow what proved reliable on these machines
(shared/reference/jupyter-stack.md §3): the app object and session before
"run all", and the ``mm-status`` label (set last, after the PNG) before
looking at the figure.
"""

import re

import pytest

pytestmark = pytest.mark.e2e

_SRC_CHANGED = """([sel, old]) => { const i = document.querySelector(sel);
    return i && i.src !== old && i.complete && i.naturalWidth > 0; }"""


def _open_lab_notebook(page, lab, name):
    page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={lab['token']}")
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext")
    page.evaluate("""async () => { const app = window.jupyterapp; await app.restored;
        const nb = app.shell.currentWidget; await nb.context.ready; await nb.sessionContext.ready; }""")
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()


def _run_cell_with(page, prefix, source):
    """Replace the source of the first cell starting with ``prefix`` and run it."""
    page.evaluate("""async ([prefix, source]) => {
        const app = window.jupyterapp; const nb = app.shell.currentWidget.content;
        const i = nb.widgets.findIndex(c => c.model.sharedModel.getSource().startsWith(prefix));
        if (i < 0) throw new Error('no cell starts with ' + prefix);
        nb.widgets[i].model.sharedModel.setSource(source);
        nb.activeCellIndex = i;
        await app.commands.execute('notebook:run-cell');
    }""", [prefix, source])


def test_lab_first_start_has_no_popups(lab, page):
    """JupyterLab with the repository's settings (as `make lab` starts it) shows
    no "get notified about official Jupyter news?" toast over the notebook."""
    _open_lab_notebook(page, lab, "00-orientation.ipynb")
    settled = page.evaluate("""async () => {
        const r = await fetch('/lab/api/settings/@jupyterlab/apputils-extension:notification',
                              {headers: {Authorization: 'token ' + window.jupyterapp.serviceManager.serverSettings.token}});
        return (await r.json()).schema.properties.fetchNews.default; }""")
    assert settled == "false"
    page.wait_for_timeout(5000)           # the news question appears a moment after the start
    assert page.get_by_text("official Jupyter news").count() == 0
    assert page.locator(".jp-toast-container .Toastify__toast").count() == 0


def test_lab_run_all_step_and_check(lab, page):
    """JupyterLab: run every cell of the COW notebook, step its first stepper
    (status label and figure change), then answer a question right and wrong."""
    from playwright.sync_api import expect
    _open_lab_notebook(page, lab, "02-cow.ipynb")
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    status = page.locator(".mm-status").first
    expect(status).to_have_text("step 0/6 drawn", timeout=90_000)
    img = page.locator("img.widget-image").first
    expect(img).to_be_visible()
    old = img.get_attribute("src")
    page.get_by_role("button", name="step ▶").first.click()
    expect(status).to_have_text("step 1/6 drawn")
    page.wait_for_function(_SRC_CHANGED, arg=["img.widget-image", old])
    # every question rendered, and the unanswered checks say so
    expect(page.locator(".mm-question").first).to_be_visible()
    assert page.locator('.mm-check[data-ok="none"]').count() >= 1
    # the kernel is done with "run all" before we edit cells
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    _run_cell_with(page, "q_cve.check(", "q_cve.check(('copy', 1, 1))")
    expect(page.locator('.mm-check[data-ok="true"]').first).to_be_visible()
    _run_cell_with(page, "q_cve.check(", "q_cve.check(('reuse', 2, 1))")
    wrong = page.locator('.mm-check[data-ok="false"]').first
    expect(wrong).to_be_visible()
    expect(wrong).to_contain_text("mapcount")


def test_voila_app_steps_and_goes_back(voila, page):
    """Voilà (what `make present` serves): the fork notebook renders as an app
    with a live stepper; step and back redraw the figure."""
    from playwright.sync_api import expect
    page.goto(f"{voila['url']}/voila/render/01-fork.ipynb")
    status = page.locator(".mm-status").first
    expect(status).to_have_text(re.compile(r"step 0/\d+ drawn"), timeout=90_000)
    n = int(re.search(r"/(\d+)", status.inner_text()).group(1))
    img = page.locator("img.widget-image").first
    expect(img).to_be_visible()
    first = img.get_attribute("src")
    page.get_by_role("button", name="step ▶").first.click()
    expect(status).to_have_text(f"step 1/{n} drawn")
    page.wait_for_function(_SRC_CHANGED, arg=["img.widget-image", first])
    after_step = img.get_attribute("src")
    page.get_by_role("button", name="◀ back").first.click()
    expect(status).to_have_text(f"step 0/{n} drawn")
    page.wait_for_function(_SRC_CHANGED, arg=["img.widget-image", after_step])
    assert "Traceback" not in page.content()
    expect(page.locator(".mm-question").first).to_be_visible()


def test_offline_deck_renders_without_network(tmp_path, page):
    """A deck built by `make slides` opens in chromium with every request served
    from 127.0.0.1: reveal.js starts, and a step slide shows its figure."""
    import importlib.util
    import subprocess
    import sys
    import time
    from conftest import ROOT, _free_port, _stop, _wait_http
    spec = importlib.util.spec_from_file_location("mmkit_slides_build", ROOT / "slides" / "build.py")
    b = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(b)
    try:
        b.fetch()
    except (SystemExit, subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"cannot fetch reveal.js & co. with npm pack: {e}")
    out = tmp_path / "slides"
    b.build([ROOT / "notebooks" / "01-fork.ipynb"], out)
    port = _free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "-d", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    requests, failed = [], []
    try:
        _wait_http(f"http://127.0.0.1:{port}/index.html", srv)
        page.on("request", lambda r: requests.append(r.url))
        page.on("response", lambda r: failed.append((r.url, r.status)) if r.status >= 400 else None)
        page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
        page.goto(f"http://127.0.0.1:{port}/01-fork.slides.html")
        page.wait_for_selector(".reveal.ready", timeout=30_000)
        hv = page.evaluate("""() => { const hs = document.querySelectorAll('.slides > section');
            for (let h = 0; h < hs.length; h++) { const vs = hs[h].querySelectorAll(':scope > section');
              for (let v = 0; v < vs.length; v++) if (vs[v].querySelector('img[alt^="step"]')) return [h, v]; }
            return null; }""")
        assert hv is not None
        page.goto(f"http://127.0.0.1:{port}/01-fork.slides.html#/{hv[0]}/{hv[1] + 1}")
        page.wait_for_function("""() => { const i = document.querySelector('section.present img[alt^="step"]');
            return i && i.complete && i.naturalWidth > 600; }""")
        time.sleep(0.3)
    finally:
        _stop(srv)
    remote = [u for u in requests if not u.startswith(f"http://127.0.0.1:{port}/") and not u.startswith("data:")]
    assert remote == []
    assert [f for f in failed if not f[0].endswith("favicon.ico")] == []
