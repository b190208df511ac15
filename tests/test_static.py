"""The book's static widgets (mmkit.static) and its per-audience pages
(book/build.py), without a browser; tests/e2e/test_book.py steps the built
pages in Chromium."""

import doctest
import importlib.util
import pathlib
import re

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _book():
    spec = importlib.util.spec_from_file_location("mmkit_book_build", ROOT / "book" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docstring_examples():
    """mmkit.static's docstring example passes."""
    import mmkit.static
    r = doctest.testmod(mmkit.static, optionflags=doctest.ELLIPSIS)
    assert r.attempted > 0 and r.failed == 0


def test_stepper_frames_one_per_step_and_era_without_controls():
    """A Stepper becomes one frame per step (0..n) per era, each with its
    picture, and no buttons, sliders or drop-downs; the widget is left as it was."""
    from mmkit.static import frames_html
    from mmkit.widgets import Stepper
    w = Stepper("cow_child_writes", era="6.18")
    w.goto(2)
    before = w.png
    out = frames_html(w)
    n = len(w.playback)
    assert len(re.findall(r'class="mm-frame" data-step="\d+" data-era="6.18"', out)) == n + 1
    assert len(re.findall(r'class="mm-frame" data-step="\d+" data-era="5.7"', out)) == n + 1
    assert out.count("<img") == 2 * (n + 1)
    assert "<button" not in out and "<select" not in out and "<input" not in out
    assert w.index == 2 and w.era.name == "6.18" and w.png == before


def test_compare_frames_side_by_side():
    """A Compare becomes one frame per step with both eras' pictures and the verdict where they disagree."""
    from mmkit.static import frames_html
    from mmkit.widgets import Compare
    c = Compare("vmsplice_child", eras=("5.7", "6.18"))
    out = frames_html(c)
    frames = re.split(r'<div class="mm-frame" ', out)[1:]
    assert len(frames) == len(c.steppers[0].playback) + 1
    assert all(f.count("<img") == 2 for f in frames)
    assert "the eras disagree" in frames[-1] and "the eras disagree" not in frames[0]


def test_student_pages_drop_solutions_and_fold_hints():
    """for_audience(): solution outputs only for the instructor; hidden hint
    cells become folded hints; widget views and state are dropped."""
    b = _book()
    hints = nbformat.v4.new_code_cell("q_hints = ['first hint', 'second hint']")
    hints.metadata["jupyter"] = {"source_hidden": True}
    q = nbformat.v4.new_code_cell("q", outputs=[
        nbformat.v4.new_output("display_data", {"text/html": "<p>the question</p>"}),
        nbformat.v4.new_output("display_data", {"text/html": '<details class="mm-solution">ANSWER 42</details>'},
                               metadata={b.SOLUTION_MARK: "q"}),
        nbformat.v4.new_output("display_data", {b.WIDGET_MIME: {"model_id": "x"}, "text/plain": "w"})])
    nb = nbformat.v4.new_notebook(cells=[hints, q], metadata={"widgets": {"state": {}}})
    student, instructor = b.for_audience(nb, "student"), b.for_audience(nb, "instructor")
    s = str(student)
    assert "ANSWER 42" not in s and "ANSWER 42" in str(instructor) and "widgets" not in student.metadata
    assert b.WIDGET_MIME not in s
    assert student.cells[0].cell_type == "markdown" and "second hint" in student.cells[0].source
    assert "<details" in student.cells[0].source
    # a lab task's answer goes under the cell that assigns it, for the instructor only
    nb.cells.append(nbformat.v4.new_code_cell("t1 = tasks.break_task()"))
    with_tasks = {"t1": "`'fork; C vmsplices'`"}
    inst = b.for_audience(nb, "instructor", with_tasks)
    assert "mm-solution" in inst.cells[-1].source and "C vmsplices" in inst.cells[-1].source
    assert "C vmsplices" not in str(b.for_audience(nb, "student", with_tasks))


def test_instructor_docs_only_in_the_instructor_book(tmp_path):
    """docs/instructor*.md (they hold the answers) go into the instructor book only; other docs into both."""
    b = _book()
    (tmp_path / "instructor-guide.md").write_text("# Guide")
    (tmp_path / "howto.md").write_text("# How to")
    assert [p.name for p in b.docs_for("student", tmp_path)] == ["howto.md"]
    assert [p.name for p in b.docs_for("instructor", tmp_path)] == ["howto.md", "instructor-guide.md"]


def test_links_to_notebooks_and_docs_point_at_pages():
    """Relative *.ipynb and *.md links become the book's *.html pages; web links stay."""
    b = _book()
    body = ('<a href="glossary.ipynb#gup">g</a><a href="../notebooks/02-cow.ipynb">c</a>'
            '<a href="instructor-guide.md">i</a><a href="https://example.org/x.md">w</a>')
    out = b._fix_links(body)
    assert 'href="glossary.html#gup"' in out and 'href="02-cow.html"' in out
    assert 'href="instructor-guide.html"' in out and 'href="https://example.org/x.md"' in out
