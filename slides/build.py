#!/usr/bin/env python3
"""Build the notebooks into self-contained reveal.js decks that work offline.

    python slides/build.py                     # every notebook -> site/slides/
    python slides/build.py notebooks/02-cow.ipynb --out /tmp/deck

What it does, per notebook:

1. copies it to a temporary folder and executes it there (nbclient), so the
   repository is never written;
2. replaces each stepper cell (``name = Stepper("scenario", era="...")``) by
   one slide per step, drawn with the ``lecture`` preset (16:9, large
   fonts): a static deck cannot run a kernel, so the live widget would only
   show its first frame;
3. exports it with nbconvert's reveal template (the ``reveal_offline``
   variant in ``slides/templates``, which drops the mermaid import), every
   script and style sheet pointing into ``vendor/`` next to the deck.

``vendor/`` holds reveal.js, require.js, jQuery, MathJax and the widget
HTML manager, taken from the npm registry with ``npm pack`` (no dependency
tree is installed) into ``build/npm/`` (ignored by git) and extracted once.
A lecture hall needs no network: open ``site/slides/index.html``, or serve
the folder with ``python -m http.server --bind 127.0.0.1 -d site/slides``.

Cells with slide type ``skip`` (the answer cells of the exercises) are left
out of the decks; solutions never appear in them.
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

_STEPPER = re.compile(r"""^\s*(\w+)\s*=\s*Stepper\(\s*(["'])([^"']+)\2(?:\s*,\s*era\s*=\s*(["'])([^"']+)\4)?""", re.M)


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
def execute(path, workdir):
    """Execute a copy of the notebook in ``workdir``; return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient
    copy = workdir / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def step_slides(scenario, era):
    """Markdown cells, one per step of ``scenario``, each showing the
    lecture-preset frame as an attached PNG."""
    import nbformat
    from mmkit.widgets import Stepper
    w = Stepper(scenario, era=era or "6.18", preset="lecture")
    cells = []
    n = len(w.playback)
    for i in range(1, n + 1):
        w.goto(i)
        name = f"{scenario}-{i}.png"
        cell = nbformat.v4.new_markdown_cell(f"![step {i} of {n}](attachment:{name})")
        cell.attachments = {name: {"image/png": base64.b64encode(w.png).decode("ascii")}}
        cell.metadata["slideshow"] = {"slide_type": "slide" if i == 1 else "subslide"}
        cells.append(cell)
    return cells


def deckify(nb):
    """Replace stepper cells by per-step frame slides, leave out the era
    comparison widgets (their era tables stay), drop widget state."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(r"=\s*Compare\(", cell.source):
            continue
        m = _STEPPER.search(cell.source) if cell.cell_type == "code" else None
        if m is None:
            cells.append(cell)
            continue
        cells += step_slides(m.group(3), m.group(5))
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
    c.TemplateExporter.extra_template_basedirs = [str(TEMPLATES)]
    body, _ = SlidesExporter(config=c).from_notebook_node(nb, resources={"metadata": {"name": name}})
    out_html.write_text(body, encoding="utf-8")


_URL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:url\()?["']?(?:https?:)?//|import\s+[\w{}\s,*]*\s+from\s+["'](?:https?:)?//""", re.I)


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
            nb = deckify(execute(path, pathlib.Path(tmp)))
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
