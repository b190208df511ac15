"""The slide decks (`make slides`, slides/build.py): era comparisons as side-by-side
frames, steppers per era where the text switches eras, no text about controls a deck
lacks, short slides with the reading text in the notes, and speaker notes that carry
the answers the questions' answer keys give."""

import html as _html
import importlib.util
import pathlib
import re

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
NOTES_DIR = ROOT / "slides" / "notes"


def _builder():
    spec = importlib.util.spec_from_file_location("mmkit_slides_build", ROOT / "slides" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sections(text):
    """The innermost <section> bodies of a deck, in order."""
    return re.findall(r"<section[^>]*>((?:(?!<section).)*?)</section>", text, re.S)


def _notes(section):
    return " ".join(re.sub(r"<[^>]+>", "", _html.unescape(n))
                    for n in re.findall(r'<aside class="notes">(.*?)</aside>', section, re.S))


def _visible(section):
    s = re.sub(r'<aside class="notes">.*?</aside>', "", section, flags=re.S)
    return re.sub(r"\s+", " ", _html.unescape(re.sub(r"<[^>]+>", " ", s))).strip()


def test_notes_files_name_existing_cells():
    """Every section of a notes file names a cell of its notebook, and every text a deck
    rewords is still in its notebook."""
    b = _builder()
    files = sorted(NOTES_DIR.glob("*.md"))
    assert files
    for f in files:
        nb_path = NB_DIR / f"{f.stem}.ipynb"
        assert nb_path.exists(), f"{f.name}: no notebook {nb_path.name}"
        ids = {c.get("id") for c in nbformat.read(nb_path, as_version=4).cells}
        keys = b.read_notes(f.stem)
        assert keys, f.name
        assert {cid for cid, _ in keys} <= ids, sorted({cid for cid, _ in keys} - ids)
    for stem, table in b.DECK_TEXT.items():
        text = "\n".join(c.source for c in nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4).cells
                         if c.cell_type == "markdown")
        for old, _ in table:
            assert old in text, (stem, old)


@pytest.fixture(scope="module")
def deck02(tmp_path_factory):
    """The 02-cow deck, built as `make slides` builds it, into a temp folder."""
    import subprocess
    b = _builder()
    try:
        b.fetch()
    except (SystemExit, subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"cannot fetch reveal.js & co. with npm pack: {e}")
    out = tmp_path_factory.mktemp("slides")
    b.build([NB_DIR / "02-cow.ipynb"], out)
    return (out / "02-cow.slides.html").read_text(encoding="utf-8")


def test_compare_is_side_by_side_frames(deck02):
    """Each step of the 5.7-vs-6.18 Compare is a slide with both eras' figures and tables."""
    frames = [s for s in _sections(deck02) if 'class="mm-deck-frame" data-era=""' in s]
    assert len(frames) == 6                                  # vmsplice_child: 6 steps
    for s in frames:
        assert s.count("<img") == 2 and 'class="mm-static-row"' in s
        assert "era 5.7" in s and "era 6.18" in s


def test_stepper_drawn_per_era_where_the_text_switches_eras(deck02):
    """The CVE stepper, whose text asks to switch to 5.7, has frames in 6.18 and 5.7; the
    first-touch stepper only in its own era."""
    frames = re.findall(r'mm-deck-frame-title">([^<]*?) · ([\d.]+) · step (\d+)/(\d+)<', deck02)
    eras = {}
    for title, era, _, _ in frames:
        eras.setdefault(_html.unescape(title), set()).add(era)
    assert {"6.18", "5.7"} <= next(v for k, v in eras.items() if "CVE-2020-29374" in k)
    assert next(v for k, v in eras.items() if k.startswith("First touch")) == {"6.18"}


def test_no_text_about_controls_the_deck_lacks(deck02):
    """Nothing asks to switch an era, press a button or use a slider, and import cells are not slides."""
    text = _html.unescape(re.sub(r'<aside class="notes">.*?</aside>', "", deck02, flags=re.S))
    for phrase in ("switch its era", "one set of controls", "Press <b>step", "focus the slider",
                   "from mmkit import"):
        assert phrase not in text, phrase
    assert "5.7 against 6.18, step by step" in text


def test_slides_are_short_and_the_reading_text_is_in_the_notes(deck02):
    """No text slide carries more than 100 words; the opening's full text is in its notes."""
    for s in _sections(deck02):
        if "mm-deck-frame" in s or "jp-CodeCell" in s:
            continue
        assert len(_visible(s).split()) <= 100, _visible(s)[:120]
    opening = _sections(deck02)[0]
    assert "CVE-2020-29374" in _visible(opening)
    assert "about 45 minutes" in _notes(opening)


def test_prediction_slide_notes_carry_the_computed_answer(deck02, monkeypatch):
    """The slide asking q_cve has speaker notes with the answer its answer key gives."""
    monkeypatch.setenv("MMKIT_RELEASE", "0")
    from mmkit.exercises import predict
    q = predict("vmsplice_child", after=5, fields=("fault", "refcount", "mapcount"), who="parent")
    fault, refcount, mapcount = q.answer_key()
    slide = next(s for s in _sections(deck02) if "q_cve" in s and "predict" in s)
    assert f"fault = {fault}, refcount = {refcount!r}, mapcount = {mapcount!r}" in _notes(slide)


def test_later_runs_need_no_npm(monkeypatch, tmp_path):
    """Once the tarballs are in the npm cache, a build fetches nothing: no npm, no network."""
    b = _builder()
    if not all((b.NPM_CACHE / tgz).exists() for _, tgz, _ in b.PACKAGES.values()):
        pytest.skip(f"the npm cache {b.NPM_CACHE} is not filled yet (the first `make slides` fills it)")
    monkeypatch.setattr(b.shutil, "which", lambda name: None)          # as if npm were not installed
    monkeypatch.setattr(b.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    b.fetch()
    assert (b.vendor(tmp_path / "vendor") / "reveal.js" / "plugin" / "notes" / "notes.js").exists()
