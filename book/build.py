#!/usr/bin/env python3
"""Build the notebooks into a static book that reads without a kernel, offline.

    python book/build.py                                # student book -> site/book
    python book/build.py --audience instructor          # with folded solutions -> site/book-instructor
    python book/build.py --audience both --out DIR      # DIR/student and DIR/instructor, one execution
    python book/build.py notebooks/02-cow.ipynb ...     # only these notebooks (plus the docs)

What it does:

1. copies each notebook to a temporary folder and executes it there
   (nbclient), after a first cell that calls :func:`mmkit.static.install`:
   every Stepper and Compare is then displayed as a frame sequence (the
   widget drawn at each step with its own ``goto()``, as the slide decks
   do), any other widget as a snapshot, and each exercise a cell creates is
   followed by its folded solution in an output marked for the instructor;
2. per audience, keeps or drops those solution outputs (the student book
   has none; the instructor's also gets each lab task's computed answer, as
   the decks' notes do), folds the hidden hint cells into ``<details>``, points
   ``*.ipynb`` links at the pages, and exports each notebook with
   nbconvert's ``basic`` template into a page of our own: one style sheet
   and one small script (``book/book.css``, ``book/book.js``), pictures
   inline as data URIs, no other file and nothing from the network;
3. renders every ``docs/*.md`` with the same exporter (the instructor
   guide and other ``instructor*`` files only in the instructor book: they
   hold the answers), and writes an index.

The live cells show what the building machine can do: a live run as root
on Linux, otherwise the run recorded on a real kernel
(:mod:`mmkit.live.recorded`).  Open ``site/book/index.html`` from disk, or
serve it with ``python -m http.server --bind 127.0.0.1 -d site/book``.
"""

import argparse
import ast
import copy
import datetime
import html
import importlib.util
import os
import pathlib
import re
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
HERE = ROOT / "book"
AUDIENCES = ("student", "instructor")
SETUP = ("# book set-up (removed from the page)\n"
         "from mmkit.static import install as _mmkit_book_install\n"
         "_mmkit_book_install(solutions=True)\n")
SOLUTION_MARK = "mmkit_book_solution"        # mmkit.static.SOLUTION_MARK (not imported: no mmkit needed here)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def log(msg):
    print(msg, flush=True)


def _slides_build():
    """slides/build.py (kept for callers that want the decks' stricter check)."""
    spec = importlib.util.spec_from_file_location("mmkit_slides_build", ROOT / "slides" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# What a browser LOADS by itself when it shows a page: src/srcset/data/poster of an element, <link href>
# (style sheets, icons, preloads), CSS url(...) and @import, ES module imports, fetch()/XMLHttpRequest/
# import() of a remote URL.  An <a href="https://..."> is a link a reader may click, not a load: it is allowed.
_REMOTE = r"""["']?(?:https?:)?//"""
_LOADS = re.compile(
    r"<(?:img|script|iframe|frame|embed|audio|video|source|track|input)\b[^>]*?\b(?:src|srcset|poster)\s*=\s*" + _REMOTE
    + r"|<object\b[^>]*?\bdata\s*=\s*" + _REMOTE
    + r"|<link\b[^>]*?\bhref\s*=\s*" + _REMOTE
    + r"|<(?:svg:)?image\b[^>]*?\b(?:xlink:)?href\s*=\s*" + _REMOTE
    + r"|url\(\s*" + _REMOTE
    + r"|@import\s+(?:url\()?" + _REMOTE
    + r"|\bimport\s+[\w{}\s,*]*\s+from\s+" + _REMOTE
    + r"""|\b(?:fetch|import|importScripts|open)\s*\(\s*(?:["'][A-Z]+["']\s*,\s*)?""" + _REMOTE,
    re.I)


def remote_loads(html_text):
    """The places where a page would LOAD something from the network when
    it is shown (an image, a script, a style sheet, a frame, a CSS url(),
    a fetch); ordinary links (``<a href="https://...">``) are not loads."""
    return [html_text[max(0, m.start() - 40):m.end() + 60] for m in _LOADS.finditer(html_text)]


# -- execution -----------------------------------------------------------------------------
def execute(path, workdir, timeout=300):
    """Execute a copy of ``path`` in ``workdir`` with the book set-up; return the notebook."""
    import nbformat
    from nbclient import NotebookClient
    copy_ = workdir / path.name
    shutil.copy(path, copy_)
    nb = nbformat.read(copy_, as_version=4)
    setup = nbformat.v4.new_code_cell(SETUP)
    setup.metadata["mmkit_book_setup"] = True
    nb.cells.insert(0, setup)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    nb.cells = [c for c in nb.cells if not c.metadata.get("mmkit_book_setup")]
    return nb


# -- per audience --------------------------------------------------------------------------
def _hints_markdown(cell):
    """A hidden hint cell (``q_hints = [...]``) as folded hints, one at a time."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple)):
            try:
                hints = ast.literal_eval(node.value)
            except ValueError:
                return None
            if not all(isinstance(h, str) for h in hints):
                return None
            name = node.targets[0].id.removesuffix("_hints") if isinstance(node.targets[0], ast.Name) else ""
            inner = "".join(f"<details class='mm-book-hint'><summary>Hint {i}</summary><p>{html.escape(h)}</p>"
                            for i, h in enumerate(hints, 1)) + "</details>" * len(hints)
            return (f"<details class='mm-book-hints'><summary>Hints for <code>{html.escape(name)}</code> "
                    f"(open one at a time)</summary>{inner}</details>")
    return None


_IPYNB_LINK = re.compile(r'(href=")(?!https?:|//)([^"#]*?)\.ipynb(#[^"]*)?"')
_MD_LINK = re.compile(r'(href=")(?!https?:|//)([^"#]*?)\.md(#[^"]*)?"')


def task_answers(path):
    """``{variable: answer markdown}`` of the lab tasks a notebook assigns,
    as the decks' notes compute them (``slides/build.py``:
    ``prediction_answers()``, from the tasks' model runs); {} if that cannot
    run here.  The questions' solutions come from the kernel instead."""
    try:
        answers = _slides_build().prediction_answers(path)
    except Exception as e:              # an older slides/build.py or a kit without the labs
        log(f"  (no lab task answers for {path.name}: {type(e).__name__}: {e})")
        return {}
    return {name: ans for name, (kind, ans) in answers.items() if kind == "lab task"}


def _task_solution_cell(name, answer):
    import nbformat
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    cell = nbformat.v4.new_markdown_cell(
        f'<details class="mm-solution"><summary>Solution (lab task <code>{html.escape(name)}</code>): open only '
        f"after you have tried</summary>{markdown2html_mistune(answer)}</details>")
    cell.metadata[SOLUTION_MARK] = name
    return cell


def for_audience(nb, audience, tasks=None):
    """A copy of an executed notebook as ``audience`` reads it (``tasks``:
    the lab tasks' answers, :func:`task_answers`, shown to the instructor
    under the cell that assigns the task)."""
    import nbformat
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("jupyter", {}).get("source_hidden"):
            md = _hints_markdown(cell)
            if md is not None:
                cells.append(nbformat.v4.new_markdown_cell(md))
                continue
        if cell.cell_type == "code":
            outs = []
            for o in cell.get("outputs", []):
                if o.get("metadata", {}).get(SOLUTION_MARK) is not None and audience != "instructor":
                    continue
                if "data" in o:
                    o["data"].pop(WIDGET_MIME, None)
                    if not o["data"]:
                        continue
                outs.append(o)
            cell.outputs = outs
        cells.append(cell)
        if audience == "instructor" and tasks and cell.cell_type == "code":
            for name in sorted(set(re.findall(r"^(\w+)\s*=", cell.source, re.M)) & set(tasks)):
                cells.append(_task_solution_cell(name, tasks[name]))
    nb.cells = cells
    return nb


def _exporter():
    from nbconvert import HTMLExporter
    e = HTMLExporter(template_name="basic")
    e.exclude_input_prompt = True
    e.exclude_output_prompt = True
    return e


def _title(nb, fallback):
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, re.M)
            if m:
                return re.sub(r"[*_`]", "", m.group(1)).strip()
    return fallback


def _page(title, body, nav, audience):
    badge = ("<span class='mm-book-audience'>instructor edition: solutions folded in</span>"
             if audience == "instructor" else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · mmkit</title>
<link rel="stylesheet" href="_static/book.css">
<link rel="stylesheet" href="_static/pygments.css">
</head><body>
<nav class="mm-book-nav">{nav}{badge}</nav>
<main class="mm-book-main">
{body}
</main>
<nav class="mm-book-nav mm-book-nav-bottom">{nav}</nav>
<script src="_static/book.js"></script>
</body></html>
"""


def _nav(pages, i):
    parts = ["<a href='index.html'>contents</a>"]
    if i is not None and i > 0:
        parts.append(f"<a rel='prev' href='{pages[i - 1][0]}'>← {html.escape(pages[i - 1][1])}</a>")
    if i is not None and i + 1 < len(pages):
        parts.append(f"<a rel='next' href='{pages[i + 1][0]}'>{html.escape(pages[i + 1][1])} →</a>")
    return " · ".join(parts)


def _fix_links(body):
    body = _IPYNB_LINK.sub(lambda m: f'{m.group(1)}{pathlib.PurePosixPath(m.group(2)).name}.html{m.group(3) or ""}"',
                           body)
    return _MD_LINK.sub(lambda m: f'{m.group(1)}{pathlib.PurePosixPath(m.group(2)).name}.html{m.group(3) or ""}"',
                        body)


_IMG = re.compile(r'(<img\b[^>]*?\bsrc=")(?!data:|https?:|//)([^"]+)(")')


def _inline_images(body, base):
    """Relative ``<img src>`` of a guide as data URIs (the book is one folder of pages)."""
    import base64
    import mimetypes

    def sub(m):
        f = pathlib.Path(base) / html.unescape(m.group(2))
        if not f.is_file():
            return m.group(0)
        mime = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
        return f"{m.group(1)}data:{mime};base64,{base64.b64encode(f.read_bytes()).decode('ascii')}{m.group(3)}"
    return _IMG.sub(sub, body)


def _doc_notebook(md_path):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(md_path.read_text(encoding="utf-8"))]
    return nb


def docs_for(audience, docs_dir):
    """The ``docs/*.md`` files ``audience`` gets (instructor* only for the instructor)."""
    files = sorted(pathlib.Path(docs_dir).glob("*.md")) if docs_dir and pathlib.Path(docs_dir).is_dir() else []
    if audience != "instructor":
        files = [f for f in files if not f.stem.lower().startswith("instructor")]
    return files


def write_site(executed, docs_dir, out, audience, tasks=None):
    """Write one audience's site from executed notebooks ``[(stem, nb)]``
    (``tasks``: ``{stem: task answers}`` for the instructor)."""
    import nbformat  # noqa: F401
    from pygments.formatters import HtmlFormatter
    if (out / "_static" / "book.js").exists():       # an earlier book: no stale pages stay behind
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    static = out / "_static"
    static.mkdir(exist_ok=True)
    shutil.copy(HERE / "book.css", static / "book.css")
    shutil.copy(HERE / "book.js", static / "book.js")
    (static / "pygments.css").write_text(HtmlFormatter(style="default").get_style_defs(".highlight"))
    exporter = _exporter()
    docs = [(f.stem, _doc_notebook(f)) for f in docs_for(audience, docs_dir)]
    entries = [(f"{stem}.html", _title(nb, stem), stem, nb, "notebook") for stem, nb in executed]
    entries += [(f"{stem}.html", _title(nb, stem), stem, nb, "doc") for stem, nb in docs]
    pages = [(e[0], e[1]) for e in entries]
    check = remote_loads
    for i, (fname, title, stem, nb, kind) in enumerate(entries):
        page_nb = for_audience(nb, audience, (tasks or {}).get(stem)) if kind == "notebook" else nb
        body, _ = exporter.from_notebook_node(page_nb, resources={"metadata": {"name": stem}})
        if kind == "doc":
            body = _inline_images(body, docs_dir)
        text = _page(title, _fix_links(body), _nav(pages, i), audience)
        bad = check(re.sub(r"<a\b[^>]*>", "<a>", text))      # links to the web are fine; loads are not
        if bad:
            raise SystemExit(f"{fname} would load from the network:\n  " + "\n  ".join(bad[:5]))
        (out / fname).write_text(text, encoding="utf-8")
    nbs = [e for e in entries if e[4] == "notebook"]
    dcs = [e for e in entries if e[4] == "doc"]
    from mmkit import __version__
    items = "".join(f"<li><a href='{e[0]}'>{html.escape(e[1])}</a> <small>({html.escape(e[2])})</small></li>"
                    for e in nbs)
    ditems = "".join(f"<li><a href='{e[0]}'>{html.escape(e[1])}</a></li>" for e in dcs)
    who = ("Instructor edition: every exercise is followed by its solution, folded."
           if audience == "instructor" else "Student edition: exercises without their solutions.")
    body = (f"<h1>mmkit: who uses a page?</h1><p>{who} Every notebook was executed on "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d} with mmkit {html.escape(__version__)}; "
            "the steppers and era comparisons are frame sequences: step through them with the buttons or "
            "the arrow keys. Everything is in this folder: it reads offline.</p>"
            f"<h2>Notebooks</h2><ol class='mm-book-toc'>{items}</ol>"
            + (f"<h2>Guides</h2><ul class='mm-book-toc'>{ditems}</ul>" if dcs else ""))
    (out / "index.html").write_text(_page("contents", body, _nav(pages, None), audience), encoding="utf-8")
    return [out / e[0] for e in entries]


def build(notebooks, outs, docs_dir=ROOT / "docs"):
    """Execute ``notebooks`` once and write a site per audience in ``outs``
    (``{"student": dir, "instructor": dir}``)."""
    os.environ["MMKIT_RELEASE"] = "0"        # beats a release file: the instructor build needs the solutions (the student build drops them)
    executed = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for path in notebooks:
            t = time.perf_counter()
            executed.append((path.stem, execute(path, pathlib.Path(tmp))))
            log(f"  executed {path.name} ({time.perf_counter() - t:.1f} s)")
    tasks = {p.stem: task_answers(p) for p in notebooks} if "instructor" in outs else {}
    written = {}
    for audience, out in outs.items():
        written[audience] = write_site(executed, docs_dir, out, audience, tasks)
        log(f"{audience} book: {len(written[audience])} page(s) in {out}; open {out / 'index.html'}")
    log(f"book built in {time.perf_counter() - t0:.1f} s")
    return written


def default_notebooks():
    nbs = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    glossary = ROOT / "notebooks" / "glossary.ipynb"
    return nbs + ([glossary] if glossary.exists() else [])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=pathlib.Path, help="default: notebooks/NN-*.ipynb and the glossary")
    ap.add_argument("--audience", choices=AUDIENCES + ("both",), default="student")
    ap.add_argument("--out", type=pathlib.Path,
                    help="default: site/book (student), site/book-instructor (instructor), site/ (both)")
    ap.add_argument("--docs", type=pathlib.Path, default=ROOT / "docs")
    args = ap.parse_args(argv)
    if args.audience == "both":
        base = args.out or ROOT / "site"
        outs = {"student": base / "book", "instructor": base / "book-instructor"}
    else:
        default = ROOT / "site" / ("book" if args.audience == "student" else "book-instructor")
        outs = {args.audience: args.out or default}
    build(args.notebooks or default_notebooks(), outs, args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
