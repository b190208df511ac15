"""The slide decks (`make slides`, slides/build.py): era comparisons one era per slide
(a step a slide, its eras below it), steppers per era where the text switches eras, no
text about controls a deck lacks, code only where the notebook means it to be read,
short slides with the reading text in the notes (but never the facts a question needs),
and speaker notes for every deck that carry the answers the questions' answer keys give.
The sizes as projected (figures, tables, reveal's arrows) are measured in Chromium by
tests/e2e/test_decks.py."""

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
    """Every section of a notes file names a cell of its notebook (by id, or by a quoted
    text found in exactly one cell), and every text a deck rewords is still in its notebook."""
    b = _builder()
    files = sorted(NOTES_DIR.glob("*.md"))
    assert files
    for f in files:
        nb_path = NB_DIR / f"{f.stem}.ipynb"
        assert nb_path.exists(), f"{f.name}: no notebook {nb_path.name}"
        cells = nbformat.read(nb_path, as_version=4).cells
        keys = b.read_notes(f.stem)
        assert keys, f.name
        _, problems = b.resolve_notes(keys, cells)
        assert not problems, (f.name, problems)
    for stem, table in b.DECK_TEXT.items():
        text = "\n".join(c.source for c in nbformat.read(NB_DIR / f"{stem}.ipynb", as_version=4).cells
                         if c.cell_type == "markdown")
        for old, _ in table:
            assert old in text, (stem, old)


def test_resolve_notes_reports_what_names_no_cell_or_several():
    """A quoted key names the one cell containing its text; an unknown id, a text in no
    cell and a text in two cells are reported, not silently dropped."""
    b = _builder()
    cells = [nbformat.v4.new_markdown_cell("## 1 · One", id="a1"), nbformat.v4.new_markdown_cell("## 2 · Two", id="b2"),
             nbformat.v4.new_markdown_cell("## 2 · Two, again", id="c3")]
    notes = {('"## 1 · One"', "notes"): "x", ("b2", "notes"): "y", ("zz", "notes"): "z",
             ('"## 2 · Two"', "notes"): "w", ('"nowhere"', "slide"): "v"}
    got, problems = b.resolve_notes(notes, cells)
    assert got == {("a1", "notes"): "x", ("b2", "notes"): "y"}
    assert len(problems) == 3 and any("zz" in p for p in problems) and any("2 cells" in p for p in problems)


#: numbered notebooks whose decks have no hand-written notes yet (their slides still get the
#: computed answers); the list may only shrink
NOTES_STILL_MISSING = {"00-orientation", "07-history-lab", "08-mapcount-lab"}


def test_every_deck_has_speaker_notes():
    """Every numbered notebook has slides/notes/<notebook>.md, except the listed ones, which
    really lack it (a new notes file must take its notebook off the list)."""
    stems = {p.stem for p in NB_DIR.glob("[0-9][0-9]-*.ipynb")}
    have = {p.stem for p in NOTES_DIR.glob("*.md")}
    assert "09-large-folios" in have
    assert stems - have == NOTES_STILL_MISSING, sorted(stems - have)


def test_09_notes_give_the_timing_and_the_lecture_break():
    """The 09 notes say how long the deck takes, where it splits into two lectures (after
    the mTHP section) and what to ask the hall."""
    text = (NOTES_DIR / "09-large-folios.md").read_text(encoding="utf-8")
    assert re.search(r"\b\d\d minutes\b", text) and "two lectures" in text
    assert "BREAK HERE" in text and "Lecture 2 of 2" in text
    assert text.count("Ask") >= 5


def test_show_input_decides_by_tag_then_by_output():
    """A deck shows a code cell's source when tagged deck-input, never when tagged
    deck-no-input, else only when the cell has no HTML or image output."""
    b = _builder()

    def cell(tags=(), outputs=()):
        c = nbformat.v4.new_code_cell("x = 1\nx")
        c.metadata["tags"] = list(tags)
        c.outputs = list(outputs)
        return c
    table = nbformat.v4.new_output("execute_result", data={"text/html": "<table></table>", "text/plain": "T"})
    printed = nbformat.v4.new_output("stream", text="1\n")
    assert not b.show_input(cell(outputs=[table]))
    assert b.show_input(cell(outputs=[printed])) and b.show_input(cell())
    assert b.show_input(cell(["deck-input"], [table]))
    assert not b.show_input(cell(["deck-no-input"], [printed]))


def test_a_compare_frame_splits_into_one_slide_per_era():
    """A Compare's frame (eras side by side) becomes one slide per era, each with its own
    figure, step text, trace and page table, the era named; the step's first era is a
    horizontal slide, the others sub-slides below it."""
    b = _builder()
    col = ('<div class="mm-static-col"><img alt="figure" src="data:image/png;base64,{e}"/>'
           '<div class="mm-explain">text {e}</div><div class="mm-trace">trace {e}</div></div>')
    tab = "<div style='flex:1'><b>era {e}</b><table class='mm-pages'><tr><td>{e}</td></tr></table></div>"
    eras = ["5.8", "6.2", "6.18"]
    body = ('<div class="mm-static-row">' + "".join(col.format(e=e) for e in eras) + "</div>"
            "<div><div class='mm-differs'>the eras disagree</div></div>"
            "<div style='display:flex'>" + "".join(tab.format(e=e) for e in eras) + "</div>")
    cells = b.frame_slides("T", [("", 1, body), ("", 2, body)], None, "subslide")
    assert [c.metadata["slideshow"]["slide_type"] for c in cells] == ["slide", "subslide", "subslide"] * 2
    for c, era in zip(cells, eras * 2):
        src = c.source
        assert src.count("<img") == 1 and f"base64,{era}" in src and f"trace {era}" in src
        assert f"<td>{era}</td>" in src and src.count("mm-pages") == 1
        assert f'data-era="{era}"' in src and f'class="mm-deck-era on">{era}<' in src
        assert "the eras disagree" in src


def _built_deck(tmp_path_factory, name):
    """Notebook ``name``'s deck, built as `make slides` builds it, into a temp folder (skips without npm)."""
    import subprocess
    b = _builder()
    try:
        b.fetch()
    except (SystemExit, subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"cannot fetch reveal.js & co. with npm pack: {e}")
    out = tmp_path_factory.mktemp("slides")
    b.build([NB_DIR / f"{name}.ipynb"], out)
    return (out / f"{name}.slides.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def deck02(tmp_path_factory):
    """The 02-cow deck, built as `make slides` builds it, into a temp folder."""
    return _built_deck(tmp_path_factory, "02-cow")


def test_compare_is_one_era_per_slide(deck02):
    """Each step of the 5.7-vs-6.18 Compare is two slides, one per era, each with one
    figure and its era's page table; the figures are never side by side."""
    frames = [s for s in _sections(deck02) if 'data-eras="5.7|6.18"' in s]
    assert len(frames) == 12                                 # vmsplice_child: 6 steps x 2 eras
    for s in frames:
        assert s.count("<img") == 1 and 'class="mm-static-row"' not in s
        assert s.count('class="mm-pages"') == 1
    assert [re.search(r'data-era="([^"]+)"', s).group(1) for s in frames[:2]] == ["5.7", "6.18"]


def test_stepper_drawn_per_era_where_the_text_switches_eras(deck02):
    """The CVE stepper, whose text asks to switch to 5.7, has frames in 6.18 and 5.7; the
    first-touch stepper only in its own era."""
    frames = [(re.search(r'data-era="([^"]+)"', a).group(1), re.search(r'data-eras="([^"]*)"', a).group(1), t)
              for a, t in re.findall(r'<div class="mm-deck-frame"([^>]*)>.*?mm-deck-frame-title">([^<]*)<',
                                     deck02, re.S)]
    assert frames
    eras = {}
    for era, shown, title in frames:
        if "|" not in shown:                                 # a Stepper's frame, not a Compare's
            eras.setdefault(_html.unescape(title), set()).add(era)
    assert {"6.18", "5.7"} <= next(v for k, v in eras.items() if "CVE-2020-29374" in k)
    assert next(v for k, v in eras.items() if k.startswith("First touch")) == {"6.18"}


def test_no_text_about_controls_the_deck_lacks(deck02):
    """Nothing asks to switch an era, press a button or use a slider, and import cells are not slides."""
    text = _html.unescape(re.sub(r'<aside class="notes">.*?</aside>', "", deck02, flags=re.S))
    for phrase in ("switch its era", "one set of controls", "Press <b>step", "focus the slider",
                   "from mmkit import"):
        assert phrase not in text, phrase
    shown = " ".join(_visible(s) for s in _sections(deck02))
    assert "side by side" not in shown.lower()             # a comparison is one era per slide
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


@pytest.fixture(scope="module")
def deck09(tmp_path_factory):
    """The 09-large-folios deck, built as `make slides` builds it, into a temp folder."""
    return _built_deck(tmp_path_factory, "09-large-folios")


def test_09_shows_no_code(deck09):
    """Every code cell of 09 has an output that speaks for itself (a table, a figure, a
    question): the deck shows outputs, no source and no In/Out prompts."""
    assert 'class="highlight hl-ipython3"' not in deck09 and 'class="jp-InputArea-editor' not in deck09
    assert 'class="jp-InputPrompt' not in deck09 and 'class="jp-OutputPrompt' not in deck09
    for src in ("q_reuse = predict(", "fields = [", "def half_shared", "Table([", "live_compare("):
        assert src not in _html.unescape(deck09), src


def test_09_compares_are_one_era_per_slide(deck09):
    """The three comparisons of 09 (two of three eras, one of two) draw one figure per slide,
    every era of every step, and no frame puts two figures side by side."""
    frames = [s for s in _sections(deck09) if 'class="mm-deck-frame"' in s]
    assert frames and all(s.count("<img") == 1 for s in frames)
    compares = {}
    for s in frames:
        shown = re.search(r'data-eras="([^"]*)"', s).group(1)
        if "|" in shown:
            compares.setdefault(shown, []).append(s)
    assert len(compares) == 3 and sorted(len(k.split("|")) for k in compares) == [2, 3, 3]
    thp = next(v for k, v in compares.items() if k == "5.8|6.2|6.18")
    assert len(thp) == 6 * 3                                 # thp_fork_cow: 6 steps x 3 eras


def test_09_question_facts_stay_on_screen(deck09):
    """The slide before each question shows the rule it needs (not only the notes): q_reuse the
    v6.15 conditions, q_mthp the same rule, q_split the PMD split at the child's write."""
    secs = _sections(deck09)
    needs = {"q_split": ["splits the child's PMD"],
             "q_reuse": ["large mapcount > 1", "no other mm", "refcount == large mapcount"],
             "q_mthp": ["no other mm", "refcount == large mapcount"]}
    for name, facts in needs.items():
        i = next(j for j, s in enumerate(secs) if f"Answer to {name}" in " ".join(_notes(s).split()))
        before = _visible(secs[i - 1])
        for fact in facts:
            assert fact in before, (name, fact, before[:200])


def test_09_notes_carry_hand_notes_and_every_answer(deck09, monkeypatch):
    """The deck's notes hold the hand-written notes (timing, the lecture break) and the
    computed answer to each of its predictions."""
    notes = " ".join(_notes(s) for s in _sections(deck09))
    assert "Lecture 1 of 2" in notes and "BREAK HERE" in notes
    for q in ("q_split", "q_reuse", "q_mthp", "q_half"):
        assert f"Answer to {q} (prediction)" in " ".join(notes.split()), q


def test_later_runs_need_no_npm(monkeypatch, tmp_path):
    """Once the tarballs are in the npm cache, a build fetches nothing: no npm, no network."""
    b = _builder()
    if not all((b.NPM_CACHE / tgz).exists() for _, tgz, _ in b.PACKAGES.values()):
        pytest.skip(f"the npm cache {b.NPM_CACHE} is not filled yet (the first `make slides` fills it)")
    monkeypatch.setattr(b.shutil, "which", lambda name: None)          # as if npm were not installed
    monkeypatch.setattr(b.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    b.fetch()
    assert (b.vendor(tmp_path / "vendor") / "reveal.js" / "plugin" / "notes" / "notes.js").exists()
