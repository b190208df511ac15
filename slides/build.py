#!/usr/bin/env python3
"""Build the notebooks into self-contained reveal.js decks that work offline.

    python slides/build.py                     # every notebook -> site/slides/
    python slides/build.py notebooks/02-cow.ipynb --out /tmp/deck

What it does, per notebook:

1. copies it to a temporary folder and executes it there (nbclient), so the
   repository is never written, after a set-up cell that makes every widget
   display as :mod:`mmkit.static` draws it for the book (the widgets' own
   ``goto()``), in the ``lecture`` preset (16:9, large fonts);
2. turns each Stepper and Compare into one slide per step, one figure per
   slide, drawn at 960x540 on the 1280x800 canvas (:data:`FIGURE_BOX`) with the
   step's text and trace beside it and the page table under it: a Compare's
   step is a slide with its first era, its other eras below it (↓ flips the
   era, → goes to the next step; three figures side by side were a third of
   the width, their text 5 px); a Stepper in its own era, and in every era
   drawn where the text before it asks to switch eras; the labs' explorers
   stay as the static snapshot :mod:`mmkit.static` made, on a slide of their own;
3. makes the text fit a deck: import cells are left out, a code cell shows
   only its output unless the notebook means its code to be read
   (:func:`show_input`), text about controls a deck lacks is reworded
   (:data:`DECK_TEXT`), an output after a slide already full of text or a
   table gets a slide of its own, and a long reading cell keeps its claim
   (its heading and first sentences, or the ``slide`` variant of
   ``slides/notes/<notebook>.md``, which may draw a picture) while its whole
   text goes to the speaker notes -- except the text just before a question,
   which stays whole unless the notes file gives it a variant (a question's
   facts must be on the screen);
4. adds speaker notes (reveal's notes plugin, key ``s``): the sections of
   ``slides/notes/<notebook>.md`` keyed by cell id, and on every slide that
   asks a ``predict()`` / ``generate()`` question or a lab task, its answer,
   computed from the answer key (decks are lecturer material: answers even
   where release mode is on);
5. exports it with nbconvert's reveal template (the ``reveal_offline``
   variant in ``slides/templates``: no mermaid import, the deck's styles),
   every script and style sheet pointing into ``vendor/`` next to the deck.

``vendor/`` holds reveal.js, require.js, jQuery, MathJax and the widget
HTML manager, taken from the npm registry with ``npm pack`` (no dependency
tree is installed) into the cache ``~/.cache/mmkit/npm`` (``MMKIT_NPM_CACHE``)
on the first run only (that run needs npm and the registry; later runs are
offline), and extracted once.  A lecture hall needs no network: open
``site/slides/index.html``, or serve the folder with
``python -m http.server --bind 127.0.0.1 -d site/slides``.

Cells with slide type ``skip`` (the answer cells of the exercises) are left
out of the decks; solutions never appear on a slide's face, but the speaker
notes (press ``s``) carry the computed answer to every prediction, exercise
and lab task on it: the decks are lecturer material, not for students.
"""

import argparse
import base64
import html
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "slides" / "templates"
#: where `npm pack` leaves its tarballs: outside the checkout, so that tests never write into it
NPM_CACHE = pathlib.Path(os.environ.get("MMKIT_NPM_CACHE", pathlib.Path.home() / ".cache" / "mmkit" / "npm"))

#: npm package -> (version, tarball name, [(member prefix in the package, destination under vendor/)])
PACKAGES = {
    "reveal.js": ("4.0.2", "reveal.js-4.0.2.tgz", [("dist/", "reveal.js/dist/"),
                                                   ("plugin/notes/", "reveal.js/plugin/notes/")]),
    "requirejs": ("2.3.8", "requirejs-2.3.8.tgz", [("require.js", "require.js")]),
    "jquery": ("2.2.3", "jquery-2.2.3.tgz", [("dist/jquery.min.js", "jquery.min.js")]),
    "mathjax": ("2.7.9", "mathjax-2.7.9.tgz", [("MathJax.js", "mathjax/MathJax.js"),
                                               ("config/TeX-AMS_CHTML-full.js", "mathjax/config/TeX-AMS_CHTML-full.js"),
                                               ("config/Safe.js", "mathjax/config/Safe.js"),
                                               ("extensions/", "mathjax/extensions/"),
                                               ("jax/input/TeX/", "mathjax/jax/input/TeX/"),
                                               ("jax/element/", "mathjax/jax/element/"),
                                               ("jax/output/CommonHTML/", "mathjax/jax/output/CommonHTML/"),
                                               ("fonts/HTML-CSS/TeX/woff/", "mathjax/fonts/HTML-CSS/TeX/woff/"),
                                               ("localization/en/", "mathjax/localization/en/")]),
    "@jupyter-widgets/html-manager": ("1.0.15", "jupyter-widgets-html-manager-1.0.15.tgz",
                                      [("dist/", "html-manager/")]),
}

#: files of the picked folders that no deck loads (kept out to keep ``vendor/`` small)
EXCLUDE = ("html-manager/embed.js", "html-manager/libembed-amd.js", "mathjax/extensions/a11y/",
           "reveal.js/dist/theme/fonts/league-gothic/")

EXPORTER_CONFIG = {
    "reveal_url_prefix": "vendor/reveal.js",
    "reveal_theme": "white",
    "reveal_width": "1280",
    "reveal_height": "800",
    "reveal_transition": "none",
    "reveal_number": "c/t",
    "reveal_scroll": True,
    "require_js_url": "vendor/require.js",
    "jquery_url": "vendor/jquery.min.js",
    "mathjax_url": "vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    "widget_renderer_url": "vendor/html-manager/embed-amd.js",
}



def log(msg):
    print(msg, flush=True)


# -- vendor --------------------------------------------------------------------------------
def fetch(cache=NPM_CACHE):
    """``npm pack`` each package into ``cache`` unless its tarball is there."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [f"{name}@{ver}" for name, (ver, tgz, _) in PACKAGES.items() if not (cache / tgz).exists()]
    if missing:
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm not found: install Node.js/npm, or put the tarballs "
                             f"{', '.join(p[1] for p in PACKAGES.values())} into {cache}")
        log(f"npm pack {' '.join(missing)}")
        subprocess.run([npm, "pack", *missing, "--pack-destination", str(cache)], check=True,
                       stdout=subprocess.DEVNULL)
    return cache


def vendor(dest, cache=NPM_CACHE):
    """Extract the files the decks load into ``dest`` (``.../vendor``)."""
    stamp = dest / ".complete"
    if stamp.exists():
        return dest
    fetch(cache)
    for name, (ver, tgz, picks) in PACKAGES.items():
        with tarfile.open(cache / tgz) as tar:
            for m in tar.getmembers():
                if not m.isfile() or not m.name.startswith("package/"):
                    continue
                rel = m.name[len("package/"):]
                if rel.endswith(".map") or rel.endswith(".esm.js"):
                    continue
                for prefix, target in picks:
                    if rel == prefix or (prefix.endswith("/") and rel.startswith(prefix)):
                        out_rel = target + rel[len(prefix):] if prefix.endswith("/") else target
                        if out_rel.startswith(EXCLUDE):
                            continue
                        out = dest / out_rel
                        out.parent.mkdir(parents=True, exist_ok=True)
                        with tar.extractfile(m) as src:
                            out.write_bytes(src.read())
    stamp.write_text("ok\n")
    return dest


# -- notebooks -----------------------------------------------------------------------------
#: the first cell of every executed copy (removed again): widgets display as
#: frame sequences (mmkit.static, the book's mechanism: each widget's own goto()),
#: drawn in the lecture preset (16:9, large fonts); no solutions
SETUP = ("# deck set-up (removed from the deck)\n"
         "import os as _os\n"
         "_os.environ['MMKIT_PRESET'] = 'lecture'\n"
         "from mmkit.static import install as _mmkit_static_install\n"
         "_mmkit_static_install(solutions=False)\n")

NOTES_DIR = ROOT / "slides" / "notes"

#: a slide cell with more words than this is reading text: the deck shows its
#: heading and first sentences, the notes the whole text (unless the notes file
#: gives the cell a ``slide`` variant)
LONG = 90

_FRAME = re.compile(r'<div class="mm-frame" data-step="(\d+)" data-era="([^"]*)">')
_TITLE = re.compile(r'<div class="mm-frames-title">(.*?)</div>', re.S)
#: text that makes the deck draw a Stepper in every era of the book, not only its own
_ERA_SWITCH = re.compile(r"\b(switch|change|set)\b[^.]*\bera\b|\bera\b[^.]*\bto \d\.\d", re.I)


def execute(path, workdir):
    """Execute a copy of the notebook in ``workdir`` (after :data:`SETUP`);
    return the executed notebook, without the set-up cell."""
    import nbformat
    from nbclient import NotebookClient
    copy = workdir / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    setup = nbformat.v4.new_code_cell(SETUP)
    setup.metadata["mmkit_deck_setup"] = True
    nb.cells.insert(0, setup)
    env = dict(os.environ, MMKIT_PRESET="lecture", MMKIT_RELEASE="0")
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    saved = {k: os.environ.get(k) for k in ("MMKIT_PRESET", "MMKIT_RELEASE")}
    os.environ.update({k: env[k] for k in saved})     # the kernel inherits the builder's environment
    try:
        client.execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nb.cells = [c for c in nb.cells if not c.metadata.get("mmkit_deck_setup")]
    return nb


# -- notes files ---------------------------------------------------------------------------
_NOTE_HEAD = re.compile(r'^## +("[^"\n]+"|\S+)(?: +(slide|notes))? *$', re.M)


def read_notes(stem, notes_dir=None):
    """``{(cell id, "notes"|"slide"): markdown}`` from ``slides/notes/<stem>.md``.

    The file is a list of sections, ``## <cell id>`` (speaker notes for that
    cell's slide) or ``## <cell id> slide`` (what the deck shows instead of
    the cell's text); text before the first section is a comment.  Instead of
    a cell id a section may name its cell by a piece of its text in double
    quotes, ``## "## 3 · fork + COW of a THP"`` (the one cell whose source
    contains it: :func:`resolve_notes`), which survives the notebook's cell ids
    being renewed and sections being added."""
    f = (notes_dir or NOTES_DIR) / f"{stem}.md"
    if not f.exists():
        return {}
    text = f.read_text(encoding="utf-8")
    heads = list(_NOTE_HEAD.finditer(text))
    out = {}
    for j, m in enumerate(heads):
        body = text[m.end():heads[j + 1].start() if j + 1 < len(heads) else len(text)].strip()
        key = (m.group(1), m.group(2) or "notes")
        if key in out:
            raise SystemExit(f"{f}: section {' '.join(key)} twice")
        out[key] = body
    return out


def resolve_notes(notes, cells):
    """``(notes by (cell id, kind), problems)``: the keys of :func:`read_notes` with
    each quoted text key replaced by the id of the one cell whose source contains the
    text; ``problems`` lists the keys that name no cell, or a text found in several."""
    ids = [c.get("id") for c in cells]
    out, problems = {}, []
    for (key, kind), body in notes.items():
        if key.startswith('"'):
            hits = [c.get("id") for c in cells if key[1:-1] in c.source]
            if len(hits) != 1:
                problems.append(f"{key} ({'no cell' if not hits else f'{len(hits)} cells'})")
                continue
            key = hits[0]
        elif key not in ids:
            problems.append(f"{key} (no cell)")
            continue
        if (key, kind) in out:
            problems.append(f"{key} {kind} named twice")
        out[(key, kind)] = body
    return out, problems


# -- predictions ---------------------------------------------------------------------------
def prediction_answers(path):
    """``{variable: (kind, answer markdown)}`` for every ``predict()`` /
    ``generate()`` question and lab task the notebook assigns, computed from
    the questions' answer keys and the tasks' model runs (the instructor
    guide's reading of the notebook, ``mmkit.exercises.guide``)."""
    from mmkit.exercises import guide
    out = {}
    with guide._lecturer():                 # decks are lecturer material: answers even in a release set-up
        for name, code, q in guide.notebook_questions(path):
            out[name] = ("prediction" if code.startswith("predict") else "exercise", guide._answer_text(q))
        try:
            tasks = guide.notebook_tasks(path)
        except ImportError:                 # a kit without the labs
            tasks = []
        for name, code, t, answers in tasks:
            ans = "; ".join(f"{label + ': ' if label else ''}`{a!r}`" for label, a in answers if a is not None)
            if ans:
                out[name] = ("lab task", ans)
    return out


def _assigned(cell):
    return set(re.findall(r"^(\w+)\s*=", cell.source, re.M)) if cell.cell_type == "code" else set()


# -- cells ---------------------------------------------------------------------------------
def _slide_type(cell):
    return cell.metadata.get("slideshow", {}).get("slide_type") or "-"


def _set_type(cell, t):
    cell.metadata["slideshow"] = {"slide_type": t}
    return cell


def notes_cell(text):
    import nbformat
    return _set_type(nbformat.v4.new_markdown_cell(text), "notes")


def is_import_cell(cell):
    """A code cell of imports only (not a slide)."""
    import ast
    if cell.cell_type != "code":
        return False
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)


#: cell tags that decide whether a deck shows a code cell's source
SHOW_INPUT_TAG, HIDE_INPUT_TAG = "deck-input", "deck-no-input"
_RICH = ("text/html", "image/png", "image/svg+xml", "application/vnd.jupyter.widget-view+json")


def show_input(cell):
    """Whether a deck shows this code cell's source.

    A deck shows code only where the notebook means the audience to read it: a cell
    tagged ``deck-input`` always, one tagged ``deck-no-input`` never; otherwise a cell
    whose output speaks for itself (a table, a figure, a question, a widget: any HTML or
    image output) shows only that output, and a cell without such output (a program
    whose printed result is the point, or one without output) shows its code."""
    tags = cell.metadata.get("tags", [])
    if SHOW_INPUT_TAG in tags:
        return True
    if HIDE_INPUT_TAG in tags:
        return False
    return not any(k in o.get("data", {}) for o in cell.get("outputs", []) for k in _RICH)


def split_frames(html_text):
    """``(title, [(era, step, inner html)])`` of a frame sequence made by
    :func:`mmkit.static.frames_html`, or None if ``html_text`` is none."""
    starts = list(_FRAME.finditer(html_text))
    if not starts:
        return None
    t = _TITLE.search(html_text)
    frames = []
    for j, m in enumerate(starts):
        end = starts[j + 1].start() if j + 1 < len(starts) else html_text.rindex("</div>")
        chunk = html_text[m.end():end]
        frames.append((m.group(2), int(m.group(1)), chunk[:chunk.rindex("</div>")]))
    return (html.unescape(t.group(1)) if t else ""), frames


def _frames_output(cell):
    for out in cell.get("outputs", []):
        h = out.get("data", {}).get("text/html")
        if h:
            got = split_frames("".join(h) if isinstance(h, list) else h)
            if got:
                return got
    return None


#: text in a widget's frames about its controls, and what a deck says instead
FRAME_TEXT = [(re.compile(r"(\d+) steps\. Press <b>step ▶</b> \(or focus the slider and use →\)\."),
               r"\1 steps, one slide each: the state before the first.")]

#: the size a frame's figure is drawn at on a 1280x800 slide (reveal's canvas, scaled to the
#: screen): 3/4 of the lecture preset's 1280 px, so its 13 pt text stays about 13 px; the
#: step text and trace go beside it, the page table under it (scrolling if it is long)
FIGURE_BOX = (960, 540)
_ERA_LABEL = re.compile(r"^\s*era\s+(.+?)\s*$")


def _frame_parts(body):
    """The pieces of one frame's HTML (:func:`mmkit.static.frames_html`): ``{"eras":
    [{"era", "img", "explain", "trace"}], "tables": [(era, html)], "key", "verdict",
    "rest"}``; a Compare's frame has one entry per era, a Stepper's one."""
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(body, "html.parser")
    out = {"eras": [], "tables": [], "key": "", "verdict": "", "rest": ""}
    v = soup.select_one(".mm-differs")
    if v is not None:
        out["verdict"] = str(v)
        v.decompose()
    keys = soup.select(".mm-key")
    if keys:
        out["key"] = str(keys[0])
    for k in keys:
        k.decompose()
    for t in soup.select("table.mm-pages"):
        label = t.find_previous_sibling("b")
        m = _ERA_LABEL.match(label.get_text()) if label is not None else None
        out["tables"].append((m.group(1) if m else "", str(t)))
        if label is not None:
            label.decompose()
        t.decompose()
    cols = [c for c in soup.select(".mm-static-col") if c.find("img")]
    for c in cols or [soup]:
        img, ex, tr = c.find("img"), c.select_one(".mm-explain"), c.select_one(".mm-trace")
        out["eras"].append({"img": str(img) if img else "", "explain": str(ex) if ex else "",
                            "trace": str(tr) if tr else ""})
        for x in (img, ex, tr):
            if x is not None:
                x.decompose()
    if cols:
        for c in cols:
            c.decompose()
    for i, (era, _) in enumerate(out["tables"]):
        if i < len(out["eras"]):
            out["eras"][i]["era"] = era
    for e in out["eras"]:
        e.setdefault("era", "")
    rest = soup.get_text(" ", strip=True)
    out["rest"] = str(soup) if rest else ""
    return out


def _frame_html(title, era, eras, i, n, part, table, key, verdict, rest=""):
    """One frame slide: the era named big (with the other eras of a comparison beside it,
    greyed), the step, the figure at :data:`FIGURE_BOX`, the step's text, verdict and trace
    beside it, the page table under it."""
    tabs = "".join(f'<span class="mm-deck-era{" on" if e == era else ""}">{html.escape(e)}</span>'
                   for e in eras if e)
    head = (f'<div class="mm-deck-head">{tabs}<span class="mm-deck-step">step {i}/{n}</span>'
            f'<span class="mm-deck-frame-title">{html.escape(title)}</span></div>')
    side = f'<div class="mm-deck-side">{verdict}{part["explain"]}{part["trace"]}{rest}</div>'
    w, h = FIGURE_BOX
    return (f'<div class="mm-deck-frame" data-era="{html.escape(era)}" data-step="{i}" '
            f'data-eras="{html.escape("|".join(eras))}" style="--mm-fig-w:{w}px;--mm-fig-h:{h}px">{head}'
            f'<div class="mm-deck-fig">{part["img"]}</div>{side}'
            f'<div class="mm-deck-table">{table}{key}</div></div>')


def frame_slides(title, frames, eras, first_type):
    """Raw HTML cells, one slide per frame and era (of the eras ``eras``; None: all).

    A Compare's frame (era ``""``: its eras side by side) becomes one slide per era, so
    that every figure is drawn as large as a Stepper's: the step is a slide (``first_type``
    for the first, then ``slide`` so that → walks the steps), its first era on it and the
    other eras below it (vertical sub-slides: ↓ flips between the eras of one step, ↑ back;
    each slide names its era big and greys the others).  A Stepper's frames are sub-slides."""
    import nbformat
    frames = [f for f in frames if (eras is None or f[0] in eras) and f[1] > 0]   # step 0: nothing mapped yet
    n = max(step for _, step, _ in frames)
    title = re.sub(r",\s*side by side$", "", title)          # a deck shows them one per slide
    cells = []

    def add(src, era, i, t):
        cell = nbformat.v4.new_raw_cell(src)
        cell.metadata["format"] = cell.metadata["raw_mimetype"] = "text/html"
        cell.metadata["mmkit_deck_frame"] = True
        cells.append(_set_type(cell, t))

    for era, i, body in frames:
        label = f"step {i} of {n}" + (f", {era}" if era else "")
        body = body.replace('alt="figure"', f'alt="{html.escape(label)}"')
        for rx, repl in FRAME_TEXT:
            body = rx.sub(repl, body)
        parts = _frame_parts(body)
        if era:                                               # a Stepper's frame, in its era
            part = parts["eras"][0]
            table = "".join(t for _, t in parts["tables"])
            add(_frame_html(title, era, [era], i, n, part, table, parts["key"], parts["verdict"], parts["rest"]),
                era, i, first_type if not cells else "subslide")
            continue
        names = [e["era"] for e in parts["eras"]]
        tables = dict(parts["tables"])
        for j, part in enumerate(parts["eras"]):
            part = dict(part, img=part["img"].replace(f'alt="{html.escape(label)}"',
                                                      f'alt="{html.escape(label)}, {html.escape(part["era"])}"'))
            t = "subslide" if j else "slide"
            add(_frame_html(title, part["era"], names, i, n, part, tables.get(part["era"], ""), parts["key"],
                            parts["verdict"], parts["rest"] if j == 0 else ""), part["era"], i, t)
    return cells


def _first_sentence(text):
    return re.split(r"(?<=[.!?])\s+(?=[A-Z*`])", text.strip())[0]


def _short(md):
    """The deck's version of a long reading cell: its heading and its first
    block, cut short (a paragraph to two sentences, a list to four items of
    one sentence each, a table only when it is short); folded ``<details>``
    are left to the notes."""
    md = re.sub(r"<details>.*?</details>", "", md, flags=re.S)
    lines = md.strip().splitlines()
    head = [ln for ln in lines[:1] if ln.startswith("#")]
    rest = "\n".join(lines[len(head):]).strip()
    block = re.split(r"\n\s*\n", rest)[0].strip() if rest else ""
    if block.startswith("|"):
        pass                                # a table is slide material: it stays whole
    elif re.match(r"([*-]|\d+\.)\s", block):
        items = re.split(r"\n(?=(?:[*-]|\d+\.)\s)", block)[:4]
        cut = []
        for it in items:
            mark, text = re.match(r"((?:[*-]|\d+\.)\s+)(.*)", it, re.S).groups()
            words = _first_sentence(text).split()
            cut.append(mark + " ".join(words[:20]) + (" …" if len(words) > 20 else ""))
        block = "\n".join(cut)
    elif not block.startswith("<"):
        block = " ".join(re.split(r"(?<=[.!?])\s+(?=[A-Z*`])", block)[:2])
    else:
        block = ""
    return "\n\n".join(x for x in ("\n".join(head), block) if x)


#: a picture in a deck variant (``## <id> slide`` of a notes file): the frame of a
#: scenario after a step, in one or more eras side by side, drawn by the widget itself
#: (``Stepper.goto()``, lecture preset): ``![caption](frame:vmsplice_child@5.7,6.18#5)``
_PICTURE = re.compile(r"!\[([^\]]*)\]\(frame:(\w+)@([\w.,]+)#(\d+)\)")


def picture_cell(md):
    """A markdown cell of ``md`` with every ``frame:`` picture drawn and attached."""
    import nbformat
    from mmkit.widgets import Stepper
    attachments = {}

    def draw(m):
        caption, scenario, eras, step = m.group(1), m.group(2), m.group(3).split(","), int(m.group(4))
        imgs = []
        for era in eras:
            w = Stepper(scenario, era=era, preset="lecture")
            w.goto(step)
            name = f"{scenario}-{era}-{step}.png"
            attachments[name] = {"image/png": base64.b64encode(w.png).decode("ascii")}
            imgs.append(f"![{caption or scenario} ({era}, step {step})](attachment:{name})")
        return '<div class="mm-deck-picture">\n\n' + " ".join(imgs) + "\n\n</div>"

    cell = nbformat.v4.new_markdown_cell(_PICTURE.sub(draw, md))
    if attachments:
        cell.attachments = attachments
    return cell


def _reword(cell, table, used):
    """Apply the deck's replacements (:data:`DECK_TEXT`) that occur in the cell's text."""
    for old, new in table:
        if old in cell.source:
            cell.source = cell.source.replace(old, new)
            used.add(old)


#: per deck: [(text, what the deck says instead)] for text about a control the deck lacks
#: (the decks have no buttons, sliders or era drop-downs); matched against the text of every
#: markdown cell, so that it survives a notebook's cell ids being renewed
DECK_TEXT = {
    "01-fork": [("Change `SEED` for a new one.", "In the notebook, `SEED` draws a new one.")],
    "02-cow": [
        ("Now step it. The stepper below plays 6.18; switch its era to 5.7 and step again:",
         "Step by step, first under 6.18, then the same steps under 5.7:"),
        ("Side by side, 5.7 against 6.18, one set of controls. Step to the parent's write (step 5) "
         "and compare the two traces:",
         "5.7 against 6.18, step by step, one era per slide (↓ flips the era). At the parent's write "
         "(step 5) compare the two traces:"),
        ("Try a few seeds with `era=\"5.7\"` as well: which answers change?",
         "Under 5.7 (`era=\"5.7\"`), which answers would change?"),
    ],
    "03-gup": [("Step the two eras side by side:", "Step the two eras, one era per slide (↓ flips the era):")],
    "07-history-lab": [
        ("opens the run in the stepper at its last step, so the verdict shows; press\n**⏮ reset**, "
         "then **step ▶**, to watch it happen: every step",
         "opens the run in the stepper. The slides below play it step by step: every step"),
        ("Two eras side by side, one set of controls:", "Two eras, step by step, one era per slide (↓ flips the era):"),
        ("Pick a case and an era: the verdict, the deciding kernel decisions, and the run in the stepper.",
         "In the notebook, any case in any era: the verdict, the deciding kernel decisions, and the run "
         "in the stepper. Here, one of them:"),
    ],
    "08-mapcount-lab": [
        ("Pick a workload and a size: the model runs it with every tracker attached and redraws the costs.",
         "In the notebook, any workload at any size, with every tracker attached. Here, fork-heavy:"),
    ],
    "09-large-folios": [
        ("Now step it. The stepper plays 6.18; its era switch replays the same steps under another kernel:",
         "Step by step under 6.18 (the comparison below adds the other eras):"),
        ("Side by side, 5.8, 6.2 and 6.18, one set of controls;",
         "5.8, 6.2 and 6.18, step by step, one era per slide (↓ flips the era);"),
        ("Step to the end and compare the traces", "At the end compare the traces"),
        ("Now step it under 6.2 and 6.18 side by side:", "Now step it under 6.2 and 6.18, one era per slide (↓ flips the era):"),
    ],
}


def deckify(nb, path=None, notes_dir=None):
    """The executed notebook as a deck:

    * each Stepper / Compare (drawn by :mod:`mmkit.static` as a frame sequence)
      becomes one slide per frame and era (:func:`frame_slides`): a Compare's
      step is a slide per era, the eras of one step stacked vertically; a
      Stepper's frames show its own era, and every era drawn when the text
      just before it asks to switch eras;
    * other widgets (the labs' explorers) stay as the static snapshot that
      :mod:`mmkit.static` drew;
    * import cells are left out; code is shown only where :func:`show_input` says;
      text about controls is reworded (:data:`DECK_TEXT`);
    * long reading cells are cut to their claim, the whole text going to the notes,
      but not the text that leads into a question;
    * speaker notes: ``slides/notes/<notebook>.md`` per cell id, and the computed
      answer of each prediction on the slide that asks it.
    """
    stem = path.stem if path else nb.metadata.get("name", "")
    notes, unknown = resolve_notes(read_notes(stem, notes_dir), nb.cells)
    reword = DECK_TEXT.get(stem, [])
    used = set()
    answers = prediction_answers(path) if path else {}
    if unknown:                             # the notebook changed; tests/test_slide_decks.py says so too
        log(f"warning: {stem}: deck notes for cells that do not exist: {', '.join(unknown)}")
    shown = [c for c in nb.cells if not (is_import_cell(c) or _slide_type(c) == "skip")]
    #: the text cell just before a question: its facts must stay on the screen
    lead_in = {a.get("id") for a, b in zip(shown, shown[1:])
               if a.cell_type == "markdown" and _assigned(b) & set(answers)}
    cells = []
    prev_text = ""
    after_frames = False
    full_slide = False                      # the current slide holds a table or a long text
    for cell in shown:
        cid = cell.get("id")
        extra = []
        if after_frames and _slide_type(cell) in ("-", "fragment"):
            _set_type(cell, "subslide")     # not on the last frame's slide
        after_frames = False
        if cell.cell_type == "code" and _slide_type(cell) == "-" and full_slide:
            _set_type(cell, "subslide")     # a table or long text fills the slide already: the output gets its own
        if _slide_type(cell) in ("slide", "subslide"):
            full_slide = False
        if cell.cell_type == "markdown":
            prev_text = cell.source             # as the notebook says it (before any rewording)
            _reword(cell, reword, used)
            if (cid, "slide") in notes:
                extra.append(cell.source)
                pic = picture_cell(notes[(cid, "slide")])
                cell.source = pic.source
                if "attachments" in pic:
                    cell.attachments = {**cell.get("attachments", {}), **pic.attachments}
            elif len(cell.source.split()) > LONG and _slide_type(cell) in ("slide", "subslide"):
                if cid in lead_in:              # cutting it would leave the question unanswerable
                    if len(cell.source.split()) > 2 * LONG:
                        log(f"warning: {stem}: cell {cid} leads into a question and is too long for a slide: "
                            f"it stays whole; give it a '## {cid} slide' variant in slides/notes/{stem}.md")
                else:
                    extra.append(cell.source)
                    cell.source = _short(cell.source)
        if cell.cell_type == "markdown":
            full_slide = full_slide or "\n|" in "\n" + cell.source or len(cell.source.split()) > LONG
        if (cid, "notes") in notes:
            extra.insert(0, notes[(cid, "notes")])
        asked = sorted(_assigned(cell) & set(answers))
        if asked and _slide_type(cell) == "-":
            _set_type(cell, "subslide")     # a question on a slide of its own, its answer in that slide's notes
        for name in asked:
            kind, ans = answers[name]
            extra.append(f"**Answer** to `{name}` ({kind}): {ans}")
        if cell.cell_type == "code" and _slide_type(cell) == "-" and any(
                'class="mm-snapshot"' in "".join(o.get("data", {}).get("text/html", ""))
                for o in cell.get("outputs", [])):
            _set_type(cell, "subslide")     # a lab explorer's snapshot: a slide of its own
        got = _frames_output(cell) if cell.cell_type == "code" else None
        if got:
            title, frames = got
            eras = None if _ERA_SWITCH.search(prev_text) else {frames[0][0]}
            t = _slide_type(cell)
            made = frame_slides(title, frames, eras, t if t in ("slide", "subslide") else "subslide")
            cells += made[:1] + ([notes_cell("\n\n".join(extra))] if extra else []) + made[1:]
            after_frames = True
            continue
        if cell.cell_type == "code" and not show_input(cell):
            cell.metadata["transient"] = {"remove_source": True}    # nbconvert's templates honour it
        cells.append(cell)
        if extra:
            cells.append(notes_cell("\n\n".join(extra)))
    for old, _ in reword:
        if old not in used:                 # the notebook changed; tests/test_slide_decks.py says so too
            log(f"warning: {stem}: the deck rewording of {old!r} found no such text (update DECK_TEXT)")
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def export(nb, out_html, name):
    from nbconvert import SlidesExporter
    from traitlets.config import Config
    c = Config()
    for k, v in EXPORTER_CONFIG.items():
        setattr(c.SlidesExporter, k, v)
    c.SlidesExporter.template_name = "reveal_offline"
    c.TemplateExporter.exclude_input_prompt = True      # no "In [8]:" / "Out[8]:" on a slide
    c.TemplateExporter.exclude_output_prompt = True
    c.TemplateExporter.extra_template_basedirs = [str(TEMPLATES)]
    body, _ = SlidesExporter(config=c).from_notebook_node(nb, resources={"metadata": {"name": name}})
    out_html.write_text(body, encoding="utf-8")


#: what makes a page load something: a ``src``, a ``<link href>``, a CSS ``url()`` / ``@import``,
#: a JS import (an ``<a href>`` to a mailing-list archive is a link a reader may follow, not a load)
_URL = re.compile(r"""(?:\bsrc|<link\b[^>]*?\bhref)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:url\()?["']?(?:https?:)?//|import\s+[\w{}\s,*]*\s+from\s+["'](?:https?:)?//""", re.I)


def remote_references(html_text):
    """The places where a page would load something from the network."""
    return [html_text[max(0, m.start() - 40):m.end() + 60] for m in _URL.finditer(html_text)]


def build(notebooks, out):
    out.mkdir(parents=True, exist_ok=True)
    vendor(out / "vendor")
    built = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in notebooks:
            t = time.perf_counter()
            nb = deckify(execute(path, pathlib.Path(tmp)), path)
            name = path.stem
            target = out / f"{name}.slides.html"
            export(nb, target, name)
            bad = remote_references(target.read_text(encoding="utf-8"))
            if bad:
                raise SystemExit(f"{target} refers to the network:\n  " + "\n  ".join(bad[:5]))
            built.append(target)
            log(f"{target.relative_to(out.parent) if out.parent in target.parents else target}  "
                f"({time.perf_counter() - t:.1f} s)")
    index = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>mmkit decks</title></head>",
             "<body style='font-family:sans-serif;max-width:40em;margin:2em auto'>",
             "<h1>mmkit: who uses a page?</h1><ol start='0'>"]
    index += [f"<li><a href='{html.escape(p.name)}'>{html.escape(p.stem.replace('.slides', ''))}</a></li>"
              for p in built]
    index += ["</ol><p>Works offline: every script and style sheet is in <code>vendor/</code>.</p></body></html>"]
    (out / "index.html").write_text("\n".join(index), encoding="utf-8")
    return built


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=pathlib.Path,
                    help="default: notebooks/[0-9][0-9]-*.ipynb")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "site" / "slides")
    args = ap.parse_args(argv)
    nbs = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    built = build(nbs, args.out)
    log(f"{len(built)} deck(s) in {args.out}; open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
