"""The lecture notebooks: stored clean, slide-ready, executable headless,
with widgets that respond when driven from Python.

Each notebook is copied to a temporary folder and executed there with
nbclient (the repository is never written); then one extra cell, run in the
same kernel, drives every stepper it created (step, back, jump, era switch)
and checks every exercise in it against its own answer key.
"""

import hashlib
import json
import pathlib
import re
import shutil
import time

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SERIES = ["00-orientation", "01-fork", "02-cow", "03-gup", "04-unshare", "05-migration", "06-truncation",
          "09-large-folios"]
GLOSSARY = "glossary.ipynb"
#: terms the glossary must define (issue 10: the way in), as the anchors notebooks link to
GLOSSARY_TERMS = ["gup", "foll-get", "foll-pin", "foll-longterm", "rmap", "anon-vma", "i-mmap", "page-cache",
                  "cow-mapping", "pte", "folio", "lru", "ksm", "swap-cache", "soft-dirty", "userfaultfd-wp",
                  "fault-around", "cma", "pss", "mm-id", "fault-flag-unshare", "pageanonexclusive", "zero-page",
                  "migration-entry", "refcount", "mapcount", "pin", "vma", "shmem", "era"]
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}

#: what each notebook must cite (kernel function, source file)
CITATIONS = {
    "00-orientation": ["do_anonymous_page()", "mm/memory.c", "copy_present_ptes()", "folio_maybe_dma_pinned()"],
    "01-fork": ["dup_mmap()", "anon_vma_fork()", "copy_present_ptes()", "folio_try_dup_anon_rmap_pte()",
                "mm/memory.c", "mm/rmap.c", "vma_needs_copy()"],
    "02-cow": ["do_wp_page()", "wp_can_reuse_anon_folio()", "wp_page_copy()", "mm/memory.c", "do_anonymous_page()"],
    "03-gup": ["mm/gup.c", "try_grab_folio()", "folio_maybe_dma_pinned()", "copy_present_page()",
               "GUP_PIN_COUNTING_BIAS"],
    "04-unshare": ["gup_must_unshare()", "mm/internal.h", "FAULT_FLAG_UNSHARE", "follow_page_pte()", "wp_page_copy()"],
    "05-migration": ["mm/migrate.c", "try_to_migrate()", "migrate_folio_unmap()", "folio_mapped()",
                     "__migrate_folio()", "remove_migration_ptes()", "mm/rmap.c"],
    "06-truncation": ["mm/truncate.c", "truncate_pagecache()", "unmap_mapping_range()", "filemap_fault()",
                      "truncate_cleanup_folio()", "i_mmap"],
    "09-large-folios": ["do_huge_pmd_anonymous_page()", "do_huge_pmd_wp_page()", "copy_huge_pmd()", "mm/huge_memory.c",
                        "__folio_add_rmap()", "mm/rmap.c", "folio_maybe_mapped_shared()",
                        "__wp_can_reuse_large_anon_folio()", "folio_average_page_mapcount()"],
}

PROBE = r'''
import json as _json
from mmkit.widgets import Stepper as _Stepper, Compare as _Compare
from mmkit.exercises.question import Question as _Question
from mmkit import MMError
_report = {"steppers": [], "questions": [], "compares": []}
for _name, _obj in list(globals().items()):
    if _name.startswith("_"):
        continue
    if isinstance(_obj, _Compare):
        _c = _obj
        _n = len(_c.steppers[0].playback)
        _c.reset()
        _c0 = _c.status.value
        _c.step()
        _c1 = _c.status.value
        _diff = [_c.differs]
        for _i in range(_n - 1):
            _c.step()
            _diff.append(_c.differs)
        _report["compares"].append(dict(name=_name, n=_n, s0=_c0, s1=_c1, s2=_c.status.value,
                                        differs=any(_diff), png=[_s.png[:4] == b"\x89PNG" for _s in _c.steppers]))
    if isinstance(_obj, _Stepper):
        _w = _obj
        _n = len(_w.playback)
        _w.reset()
        _s0, _p0 = _w.status.value, _w.png
        _w.step()
        _s1, _p1 = _w.status.value, _w.png
        _w.goto(_n)
        _s2 = _w.status.value
        _w.back()
        _s3, _i3 = _w.status.value, _w.index
        _w.set_era("5.7")
        _s4 = _w.status.value
        _w.set_era("6.18")
        _report["steppers"].append(dict(name=_name, n=_n, s0=_s0, s1=_s1, s2=_s2, s3=_s3, i3=_i3, s4=_s4,
                                        changed=_p0 != _p1, png=_p1[:8] == b"\x89PNG\r\n\x1a\n",
                                        trace=len(_w.trace.value)))
    elif isinstance(_obj, _Question):
        _q = _obj
        if _q._checker is None:
            _ok = _q.evaluate(_q.answer_key())[0]
        elif hasattr(_q._checker, "letter"):
            _ok = _q.evaluate(_q._checker.letter)[0]
        else:                           # a build question: its own program must reach the target
            def _build(k, _prog=_q._checker.program):
                _env = {}
                for _op in _prog.ops:
                    try:
                        _op.apply(k, _env)
                    except MMError:
                        pass
                return _env["P"], _env["a"]
            _ok = _q.evaluate(_build)[0]
        _report["questions"].append(dict(name=_name, ok=_ok, params=_q.params_line()))
print("PROBE" + _json.dumps(_report))
'''


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every notebook executed once in a temp copy, plus the probe cell."""
    from nbclient import NotebookClient
    tmp = tmp_path_factory.mktemp("notebooks")
    before = {n: _digest(NB_DIR / f"{n}.ipynb") for n in SERIES}
    out = {}
    for name in SERIES:
        shutil.copy(NB_DIR / f"{name}.ipynb", tmp / f"{name}.ipynb")
        nb = nbformat.read(tmp / f"{name}.ipynb", as_version=4)
        probe = nbformat.v4.new_code_cell(PROBE)
        nb.cells.append(probe)
        client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp)}})
        t = time.perf_counter()
        error = None
        elapsed = None
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell is probe:
                    elapsed = time.perf_counter() - t      # the notebook itself, kernel start included
                try:
                    client.execute_cell(cell, i)
                except Exception as e:          # CellExecutionError: keep going to report it
                    error = f"cell {i}: {e}"
                    break
        client.set_widgets_metadata()
        if elapsed is None:
            elapsed = time.perf_counter() - t
        text = "".join(o.get("text", "") for o in probe.get("outputs", []) if o.get("output_type") == "stream")
        report = json.loads(text.split("PROBE", 1)[1]) if "PROBE" in text else None
        out[name] = dict(nb=nb, error=error, report=report, seconds=elapsed)
    total = sum(r["seconds"] for r in out.values())
    after = {n: _digest(NB_DIR / f"{n}.ipynb") for n in SERIES}
    return dict(runs=out, total=total, unchanged=before == after, tmp=tmp)


# -- stored form ---------------------------------------------------------------------
@pytest.mark.parametrize("name", SERIES)
def test_stored_without_outputs(name):
    """Notebooks are committed clean: no outputs, no execution counts, no widget state."""
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has stored outputs"
            assert cell.execution_count is None
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("name", SERIES)
def test_every_cell_has_slide_metadata(name):
    """Every cell says how it presents as a slide; each deck has a title slide and several slides."""
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    types = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert all(t in SLIDE_TYPES for t in types), types
    assert types[0] == "slide"
    assert types.count("slide") >= 6


@pytest.mark.parametrize("name", SERIES)
def test_cites_kernel_functions_and_files(name):
    """The prose names the kernel functions of its topic and their source files."""
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = [c for c in CITATIONS[name] if c not in text]
    assert not missing, f"{name} does not mention {missing}"


@pytest.mark.parametrize("name", SERIES)
def test_structure(name):
    """Each notebook has a stepper, a predict-then-step question, a guarded live
    cell, and seeded exercises at the end."""
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "Stepper(" in code and "predict(" in code and "live_compare(" in code
    tail = "\n".join(c.source for c in nb.cells[-12:] if c.cell_type == "code")
    assert "generate(" in tail and "SEED" in tail
    # no solution is revealed by running the notebook top to bottom
    for c in nb.cells:
        if c.cell_type == "code":
            for line in c.source.splitlines():
                assert not line.strip().startswith(("q1.solution()", "q.solution()")), line


# -- execution -------------------------------------------------------------------------
@pytest.mark.parametrize("name", SERIES)
def test_executes_headless_without_error(executed, name):
    """Every cell runs in a fresh kernel (nbclient) without raising."""
    run = executed["runs"][name]
    assert run["error"] is None, run["error"]


def test_series_leaves_repo_untouched(executed):
    """Executing the series never writes into the repository.  (Its run time
    is a figure, reported here and in the closing notes, not a timed test.)"""
    assert executed["unchanged"]
    print(f"\nseries executed in {executed['total']:.1f} s: " +
          ", ".join(f"{n} {r['seconds']:.1f}s" for n, r in executed["runs"].items()))


def test_every_notebook_is_executed_by_a_test():
    """No notebook escapes a test: 00-06 run here, the two labs in tests/test_labs.py, and the
    glossary (markdown only) is checked below."""
    from test_labs import LAB_NOTEBOOKS
    assert sorted(p.name for p in NB_DIR.glob("*.ipynb")) == sorted([f"{n}.ipynb" for n in SERIES] + LAB_NOTEBOOKS
                                                                    + [GLOSSARY])


def _markdown(path):
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_glossary_defines_the_terms_and_every_link_resolves():
    """The glossary is stored clean, defines every listed term under an anchor, and every
    glossary.ipynb#anchor link in notebooks 00-06 points at an anchor it defines."""
    nb = nbformat.read(NB_DIR / GLOSSARY, as_version=4)
    nbformat.validate(nb)
    assert all(c.cell_type == "markdown" for c in nb.cells)
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', _markdown(NB_DIR / GLOSSARY)))
    missing = [t for t in GLOSSARY_TERMS if t not in anchors]
    assert not missing, missing
    for name in SERIES:
        links = re.findall(r"glossary\.ipynb#([a-z0-9-]+)", _markdown(NB_DIR / f"{name}.ipynb"))
        dangling = sorted(set(links) - anchors)
        assert not dangling, f"{name} links to glossary anchors that do not exist: {dangling}"


@pytest.mark.parametrize("name", SERIES)
def test_widgets_respond_when_driven(executed, name):
    """Every stepper in the notebook draws a PNG, and step / jump / back / era
    switch each update the status label; the figure changes on a step."""
    report = executed["runs"][name]["report"]
    assert report is not None, executed["runs"][name]["error"]
    assert report["steppers"], f"{name} has no stepper"
    for st in report["steppers"]:
        n = st["n"]
        assert st["s0"] == f"step 0/{n} drawn", st
        assert st["s1"] == f"step 1/{n} drawn", st
        assert st["s2"] == f"step {n}/{n} drawn", st
        assert st["s3"] == f"step {n - 1}/{n} drawn" and st["i3"] == n - 1, st
        assert st["s4"].endswith("drawn"), st
        assert st["png"] and st["changed"], st
        assert st["trace"] > 0


def test_era_comparisons_respond(executed):
    """The side-by-side era widgets (COW and GUP notebooks) step together, and
    at some step their eras disagree, which is the point of showing them."""
    compares = [c for r in executed["runs"].values() if r["report"] for c in r["report"]["compares"]]
    assert {c["name"] for c in compares} == {"cve_compare", "pin_compare", "thp_compare", "mthp_compare", "half_compare"}
    for c in compares:
        n = c["n"]
        assert (c["s0"], c["s1"], c["s2"]) == (f"step 0/{n} drawn", f"step 1/{n} drawn", f"step {n}/{n} drawn"), c
        assert all(c["png"]) and c["differs"], c


@pytest.mark.parametrize("name", SERIES)
def test_exercises_in_notebook_accept_their_answer_key(executed, name):
    """Every question a notebook creates is answerable: its computed key passes."""
    report = executed["runs"][name]["report"]
    assert report is not None
    assert report["questions"], f"{name} creates no question"
    bad = [q for q in report["questions"] if q["ok"] is not True]
    assert not bad, bad


@pytest.mark.parametrize("name", SERIES)
def test_executed_outputs_show_what_the_prose_says(executed, name):
    """The saved outputs hold the stepper's PNG (widget state), the questions,
    and the unanswered-check placeholders, never an error."""
    nb = executed["runs"][name]["nb"]
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    images = [m for m in state.values() if m.get("model_name") == "ImageModel"]
    assert images, "no image widget state saved"
    labels = [m["state"].get("value", "") for m in state.values() if m.get("model_name") == "LabelModel"]
    assert any(v.endswith("drawn") for v in labels)
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and "text/html" in o.get("data", {})]
    assert any("mm-question" in h for h in html)
    assert any('data-ok="none"' in h for h in html)
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))


def test_key_values_in_outputs(executed):
    """Spot checks of values the prose relies on."""
    def outputs(name):
        nb = executed["runs"][name]["nb"]
        txt = []
        for c in nb.cells:
            for o in c.get("outputs", []) if c.cell_type == "code" else []:
                txt.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
        return "\n".join(txt)
    assert "1025" in outputs("00-orientation")
    assert "after mprotect(PROT_READ) and back: the PTE is RO" in outputs("00-orientation")
    assert "b'NEW DATA'" in outputs("02-cow") and "5.7" in outputs("02-cow")
    assert "era 6.18*: the pipe returns b'NEW DATA'" in outputs("02-cow")
    assert "the device reads: b'after the fork!'" in outputs("03-gup")
    assert "the device reads: b'NEW DATA'" in outputs("04-unshare")
    assert "EAGAIN" in outputs("05-migration") and "skipped" in outputs("05-migration")
    assert outputs("06-truncation").count("SIGBUS") >= 3
    assert "era 6.18 : a long-term writable pin of a shared ext4 mapping -> EFAULT" in outputs("06-truncation")


def test_readme_route_matches_the_notebooks():
    """Every notebook path and notebook-table entry in the README names a file in notebooks/,
    and every notebook there is in the README's table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paths = re.findall(r"notebooks/([\w.-]+\.ipynb)", readme)
    assert paths and all((NB_DIR / p).exists() for p in paths), [p for p in paths if not (NB_DIR / p).exists()]
    table = set(re.findall(r"^\| `([\w-]+)` \|", readme, flags=re.M))
    assert table == {p.stem for p in NB_DIR.glob("*.ipynb")}, table


def _cells(name):
    return nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4).cells


@pytest.mark.parametrize("name", SERIES)
def test_opens_with_objectives_and_code_early(name):
    """The first cell states objectives, prerequisites, time and core/optional sections and
    links the glossary; a code cell follows within the first three cells."""
    cells = _cells(name)
    head = cells[0].source
    assert cells[0].cell_type == "markdown"
    for word in ("You will", "Prerequisites", "Time", "Core", "Optional", "glossary.ipynb"):
        assert word in head, f"{name}: the opening cell does not say {word!r}"
    assert any(c.cell_type == "code" for c in cells[1:3]), f"{name}: no code within the first three cells"


@pytest.mark.parametrize("name", SERIES)
def test_every_prediction_precedes_its_stepper(name):
    """A predict() question about a scenario comes before any stepper or comparison that plays it,
    and every predict() gives its own hints, kept in a collapsed cell that no slide shows."""
    cells = _cells(name)
    code = [(i, c.source) for i, c in enumerate(cells) if c.cell_type == "code"]
    asked = [(i, m) for i, src in code for m in re.findall(r'predict\("([a-z_]+)"', src)]
    assert asked, f"{name} asks no prediction"
    for i, scenario in asked:
        shown = [j for j, src in code if re.search(r'(Stepper|Compare|era_outcomes)\("%s"' % scenario, src)]
        assert all(j > i for j in shown), f"{name}: {scenario!r} is played at cells {shown} before it is asked at {i}"
    for i, src in code:
        if re.search(r"\w+ = predict\(", src):
            assert "hints=" in src, f"{name}: the prediction at cell {i} has no hints of its own"
    # the hints themselves stay out of sight: in a collapsed cell that no slide shows
    for c in cells:
        if c.cell_type == "code" and re.search(r"^\w+_hints = \[", c.source, flags=re.M):
            assert c.metadata.get("jupyter", {}).get("source_hidden") is True, c.source[:60]
            assert c.metadata["slideshow"]["slide_type"] == "skip", c.source[:60]


@pytest.mark.parametrize("name", SERIES)
def test_no_dangling_references(name):
    """No 'facts N.N' references to a file outside the repository, and the series does not end at 06."""
    text = _markdown(NB_DIR / f"{name}.ipynb")
    assert not re.search(r"facts\s+\d", text), name
    assert "end of the series" not in text.lower(), name


# -- slides --------------------------------------------------------------------------------
def _slides_builder():
    import importlib.util
    spec = importlib.util.spec_from_file_location("mmkit_slides_build", ROOT / "slides" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    """One deck (00-orientation) built as `make slides` builds them, into a temp folder."""
    import subprocess
    b = _slides_builder()
    try:
        b.fetch()
    except (SystemExit, subprocess.CalledProcessError, OSError) as e:
        pytest.skip(f"cannot fetch reveal.js & co. with npm pack: {e}")
    out = tmp_path_factory.mktemp("slides")
    b.build([NB_DIR / "00-orientation.ipynb"], out)
    return {"out": out, "html": (out / "00-orientation.slides.html").read_text(encoding="utf-8"), "builder": b}


def test_deck_is_self_contained(deck):
    """The deck loads nothing from the network, and every local file it names exists."""
    import re
    html = deck["html"]
    assert deck["builder"].remote_references(html) == []
    local = re.findall(r"""(?:src|href)=["'](vendor/[^"'?#]+)""", html)
    assert any(u.endswith("reveal.css") for u in local) and any("mathjax" in u for u in local)
    assert "vendor/reveal.js/dist/reveal" in html and (deck["out"] / "vendor/reveal.js/dist/reveal.js").exists()
    missing = [u for u in local if not (deck["out"] / u).exists()]
    assert not missing, missing
    assert (deck["out"] / "index.html").exists()


def test_deck_has_one_slide_per_step_and_no_answers(deck):
    """The stepper becomes one large-figure slide per step; the answer cells (slide type
    skip) and the solutions are not in the deck."""
    html = deck["html"]
    assert html.count('alt="step ') == 3                   # the fork scenario has 3 steps
    assert "data:image/png;base64," in html
    assert "q1.check(" not in html and "q1.solution()" not in html and "q1.hint()" not in html
