"""Real browser, the 02 deck (`make slides`) at 1280x800, as a projector shows it: every
frame of the 5.7-vs-6.18 comparison is one era per slide with its figure at least 900 px
wide, its table inside the slide (or scrolling in its own box), reveal's arrows over no
content, and the slide asking the CVE prediction carries speaker notes with the answer
the question's answer key gives."""

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


#: what a frame slide measures on screen: figure width, the figure's 13 pt text as drawn,
#: whether the table box ends inside the window, and which visible content reveal's arrows cover
_MEASURE = """() => { const s = document.querySelector('section.present:not(.stack)');
  const im = s.querySelector('.mm-deck-fig img'), r = im.getBoundingClientRect();
  const box = s.querySelector('.mm-deck-table').getBoundingClientRect();
  const opacity = e => { let o = 1; for (; e; e = e.parentElement) o *= parseFloat(getComputedStyle(e).opacity); return o; };
  const ctl = Array.from(document.querySelectorAll('.reveal .controls button'))
      .filter(b => getComputedStyle(b).display !== 'none' && opacity(b) > 0.05).map(b => b.getBoundingClientRect());
  const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const covered = Array.from(s.querySelectorAll('img, table, .mm-deck-side, .mm-deck-head'))
      .filter(e => ctl.some(c => hit(c, e.getBoundingClientRect()))).map(e => e.className || e.tagName);
  return {w: r.width, text: 13 * 96 / 72 * r.width / im.naturalWidth, natural: im.naturalWidth,
          boxBottom: box.bottom, boxRight: box.right, covered}; }"""


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_compare_frames_are_legible_at_projector_sizes(deck02, browser, size):
    """Every step of the comparison, in each era: one figure, at least 900 px wide at
    1280x800 (its text at least 12 px), the page table's box inside the window, and no
    visible reveal arrow over the content."""
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = ctx.new_page()
    try:
        page.goto(deck02)
        page.wait_for_selector(".reveal.ready", timeout=60_000)
        where = page.evaluate("""() => { const out = []; const hs = document.querySelectorAll('.slides > section');
            hs.forEach((h, i) => { const vs = h.querySelectorAll(':scope > section');
              (vs.length ? Array.from(vs) : [h]).forEach((v, j) => {
                const f = v.querySelector('.mm-deck-frame'); if (f && f.dataset.eras.includes('|')) out.push([i, j]); }); });
            return out; }""")
        assert len(where) == 12                                  # 6 steps x 2 eras
        for h, v in where:
            page.goto(f"{deck02}#/{h}/{v}")
            page.wait_for_function("() => { const i = document.querySelector('section.present:not(.stack) img');"
                                   " return i && i.complete && i.naturalWidth > 0; }")
            m = page.evaluate(_MEASURE)
            scale = min(size[0] / 1280, size[1] / 800)
            assert m["w"] >= 900 * min(scale, 1.0) and m["text"] >= 12, (h, v, m)
            assert m["boxBottom"] <= size[1] and m["boxRight"] <= size[0], (h, v, m)
            assert not m["covered"], (h, v, m)
    finally:
        ctx.close()


def test_prediction_slide_has_notes_with_the_computed_answer(deck02, page, monkeypatch):
    """The slide that asks q_cve has speaker notes (reveal's notes plugin) holding the answer
    computed from the question's answer key."""
    monkeypatch.setenv("MMKIT_RELEASE", "0")
    from mmkit.exercises import predict
    fault, refcount, mapcount = predict("vmsplice_child", after=5, fields=("fault", "refcount", "mapcount"),
                                        who="parent").answer_key()
    slide = _go(page, deck02, "return Array.from(s.querySelectorAll('aside.notes'))"
                              ".some(n => n.textContent.includes('q_cve'));")
    notes = slide.locator("aside.notes")
    assert notes.count() >= 1
    text = " ".join(notes.nth(i).text_content() for i in range(notes.count()))
    assert f"fault = {fault}, refcount = {refcount!r}, mapcount = {mapcount!r}" in " ".join(text.split())
    assert "plugin/notes/notes.js" in page.content()            # reveal's notes plugin: the speaker view (s)
    assert notes.first.is_hidden()                               # notes are for the speaker, not the screen
