"""Real browser, the 02 deck (`make slides`): the key picture of the CVE lecture, the
5.7-vs-6.18 comparison, shows both eras side by side, and the slide asking the CVE
prediction carries speaker notes with the answer the question's answer key gives."""

import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT, _free_port, _stop, _wait_http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deck02(tmp_path_factory):
    """The 02-cow deck built into a temp folder and served on 127.0.0.1."""
    spec = importlib.util.spec_from_file_location("mmkit_slides_build", ROOT / "slides" / "build.py")
    b = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(b)
    try:
        b.fetch()
    except (SystemExit, subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"cannot fetch reveal.js & co. with npm pack: {e}")
    out = tmp_path_factory.mktemp("slides")
    b.build([ROOT / "notebooks" / "02-cow.ipynb"], out)
    port = _free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "-d", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/index.html", srv)
        yield f"http://127.0.0.1:{port}/02-cow.slides.html"
    finally:
        _stop(srv)


_FIND = """(pred) => { const hs = document.querySelectorAll('.slides > section');
    for (let h = 0; h < hs.length; h++) { const vs = hs[h].querySelectorAll(':scope > section');
      const list = vs.length ? Array.from(vs) : [hs[h]];
      for (let v = 0; v < list.length; v++) if (new Function('s', pred)(list[v])) return [h, v]; }
    return null; }"""


def _go(page, url, pred):
    """Open the first slide for which ``pred`` (JS body over section ``s``) is true."""
    page.goto(url)
    page.wait_for_selector(".reveal.ready", timeout=60_000)
    hv = page.evaluate(_FIND, pred)
    assert hv is not None, pred
    page.goto(f"{url}#/{hv[0]}/{hv[1]}")
    page.wait_for_function("() => document.querySelector('section.present:not(.stack)') !== null")
    return page.locator("section.present:not(.stack)")


def test_compare_slide_shows_both_eras_side_by_side(deck02, page):
    """At the parent's write (step 5) the comparison slide shows two loaded figures next to
    each other, with the 5.7 and the 6.18 page tables."""
    from playwright.sync_api import expect
    slide = _go(page, deck02, "const f = s.querySelector('.mm-deck-frame'); return f && f.dataset.era === '' "
                              "&& f.dataset.step === '5';")
    page.wait_for_function("""() => { const im = document.querySelectorAll('section.present:not(.stack) img');
        return im.length === 2 && Array.from(im).every(i => i.complete && i.naturalWidth > 300); }""")
    boxes = [slide.locator("img").nth(i).bounding_box() for i in range(2)]
    assert all(b and b["width"] > 200 for b in boxes)
    left, right = sorted(boxes, key=lambda b: b["x"])
    assert right["x"] >= left["x"] + left["width"] - 1          # side by side, not stacked
    assert abs(left["y"] - right["y"]) < 20
    expect(slide).to_contain_text("era 5.7")
    expect(slide).to_contain_text("era 6.18")
    expect(slide).to_contain_text("step 5/6")


def test_prediction_slide_has_notes_with_the_computed_answer(deck02, page, monkeypatch):
    """The slide that asks q_cve has speaker notes (reveal's notes plugin) holding the answer
    computed from the question's answer key."""
    monkeypatch.setenv("MMKIT_RELEASE", "0")
    from mmkit.exercises import predict
    fault, refcount, mapcount = predict("vmsplice_child", after=5, fields=("fault", "refcount", "mapcount"),
                                        who="parent").answer_key()
    slide = _go(page, deck02, "return s.textContent.includes('q_cve = predict(');")
    notes = slide.locator("aside.notes")
    assert notes.count() >= 1
    text = " ".join(notes.nth(i).text_content() for i in range(notes.count()))
    assert f"fault = {fault}, refcount = {refcount!r}, mapcount = {mapcount!r}" in " ".join(text.split())
    assert "plugin/notes/notes.js" in page.content()            # reveal's notes plugin: the speaker view (s)
    assert notes.first.is_hidden()                               # notes are for the speaker, not the screen
