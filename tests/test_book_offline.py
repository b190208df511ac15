"""The book's offline check (book/build.py) and the instructor edition of the docs: fast, no notebook executed."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def build():
    """book/build.py as a module."""
    spec = importlib.util.spec_from_file_location("mmkit_book_build", ROOT / "book" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_offline_check_rejects_loads_not_links(build):
    """What the browser would load (img/script/link/iframe/source, CSS url()/@import, fetch, module import) is rejected; an outbound <a href> a reader may click is not."""
    loads = ['<img alt="x" src="https://x/y.png">', '<script src="//cdn/x.js"></script>',
             '<link rel="stylesheet" href="https://a/b.css">', "<iframe src='http://x'></iframe>",
             '<source srcset="https://x/a.webp">', 'div { background: url("https://x/bg.png") }',
             '@import url(https://x/a.css);', 'fetch("https://x/data.json")', 'import x from "https://x/m.js"']
    for text in loads:
        assert build.remote_loads(text), text
    for text in ['<a href="https://nbgrader.readthedocs.io">nbgrader</a>', '<a href="02-cow.html">02</a>',
                 '<img src="data:image/png;base64,AAAA">', '<script src="_static/book.js"></script>']:
        assert not build.remote_loads(text), text


def test_instructor_docs_build_offline(build, tmp_path):
    """The instructor edition's pages of the real docs/ (the instructor guide with its outbound links) build and load nothing from the network -- the part of make book-instructor that the student book lacks."""
    out = tmp_path / "book-instructor"
    pages = build.write_site([], ROOT / "docs", out, "instructor")
    names = {p.name for p in pages}
    assert "instructor-guide.html" in names and (out / "index.html").exists()
    text = (out / "instructor-guide.html").read_text(encoding="utf-8")
    assert 'href="https://nbgrader.readthedocs.io' in text and not build.remote_loads(text)
    student = build.write_site([], ROOT / "docs", tmp_path / "book", "student")
    assert "instructor-guide.html" not in {p.name for p in student}
