"""Real browser: the static book (``make book``) reads without a kernel and
without the network.

One build (book/build.py, both audiences from one execution) of a subset:
02-cow (steppers, an era comparison, predictions, seeded exercises, live
cells) and the glossary, plus a docs folder with an ordinary guide and an
instructor guide.  ``make book`` builds every notebook the same way.
The pages are served from 127.0.0.1; every request the page makes is
recorded, and any that is not to 127.0.0.1 (or file:/data:) is refused and
fails the test.
"""

import functools
import http.server
import pathlib
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

NOTEBOOKS = ["notebooks/02-cow.ipynb", "notebooks/glossary.ipynb"]
GUIDE = "# A guide\n\nSee the [glossary](../notebooks/glossary.ipynb#gup) and [nbgrader](https://nbgrader.readthedocs.io).\n"
INSTRUCTOR = "# Instructor guide\n\nThe answer to q_cve is INSTRUCTOR-ONLY-ANSWER.\n"


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """Both books of the subset, built once, served on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("book")
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "a-guide.md").write_text(GUIDE + "\n![a figure](img/dot.png)\n")
    (docs / "img").mkdir()
    import base64                                   # a 1x1 PNG
    (docs / "img" / "dot.png").write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="))
    (docs / "instructor-guide.md").write_text(INSTRUCTOR)
    p = subprocess.run([sys.executable, str(ROOT / "book" / "build.py"), *[str(ROOT / n) for n in NOTEBOOKS],
                        "--audience", "both", "--out", str(tmp), "--docs", str(docs)],
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    handler = functools.partial(_QuietHandler, directory=str(tmp))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"dir": tmp, "url": f"http://127.0.0.1:{server.server_address[1]}", "log": p.stdout}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _local(url):
    return url.startswith(("http://127.0.0.1:", "file:", "data:", "about:"))


@pytest.fixture
def guarded(page):
    """The page, with every request recorded and any off 127.0.0.1 refused."""
    requests, refused = [], []

    def route(r):
        url = r.request.url
        requests.append(url)
        if _local(url):
            r.continue_()
        else:
            refused.append(url)
            r.abort()
    page.context.route("**/*", route)
    page.requests, page.refused = requests, refused
    return page


def _broken_images(page):
    return page.evaluate("""() => Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.outerHTML.slice(0, 120))""")


@pytest.mark.parametrize("audience", ["book", "book-instructor"])
def test_every_page_loads_offline_with_every_figure(book, guarded, audience):
    """Every page of both books loads with no request off 127.0.0.1 and no broken image."""
    base = book["dir"] / audience
    pages = sorted(p.name for p in base.glob("*.html"))
    assert {"index.html", "02-cow.html", "glossary.html", "a-guide.html"} <= set(pages), pages
    for name in pages:
        guarded.goto(f"{book['url']}/{audience}/{name}")
        guarded.wait_for_load_state("load")
        assert _broken_images(guarded) == [], name
        if name in ("02-cow.html", "a-guide.html"):     # the figures are there, not just unbroken
            assert guarded.evaluate("() => document.images.length") >= 1, name
    assert guarded.refused == [], guarded.refused
    assert guarded.requests and all(_local(u) for u in guarded.requests)


def test_steppers_and_compare_step_in_the_page(book, guarded):
    """Each stepper and the era comparison is a frame sequence: one frame shows,
    clicking "step" shows the next (another picture), "back" returns."""
    guarded.goto(f"{book['url']}/book/02-cow.html")
    boxes = guarded.locator(".mm-frames")
    assert boxes.count() >= 3                                   # two steppers and a compare
    n_img = guarded.evaluate("() => document.querySelectorAll('.mm-frames img').length")
    assert n_img >= 3 * 4 and _broken_images(guarded) == []
    compare = guarded.locator(".mm-frames", has_text="side by side").first
    assert compare.locator(".mm-frame.mm-current img").count() == 2      # 5.7 and 6.18 next to each other
    for i in range(boxes.count()):
        box = boxes.nth(i)
        visible = box.locator(".mm-frame:visible")
        assert visible.count() == 1 and box.get_attribute("data-current") == "0"
        src0 = box.locator(".mm-frame.mm-current img").first.get_attribute("src")
        box.locator("button.mm-next").click()
        assert box.get_attribute("data-current") == "1"
        assert box.locator(".mm-frame:visible").count() == 1
        assert "step 1/" in box.locator(".mm-frames-label").inner_text()
        src1 = box.locator(".mm-frame.mm-current img").first.get_attribute("src")
        assert src1 != src0
        box.locator("button.mm-prev").click()
        assert box.get_attribute("data-current") == "0"
    # a stepper's era switch: the same step drawn in 5.7
    stepper = boxes.first
    assert stepper.locator("select.mm-era option").all_inner_texts() == ["era 6.18", "era 5.7"]
    stepper.locator("button.mm-next").click()
    src618 = stepper.locator(".mm-frame.mm-current img").first.get_attribute("src")
    stepper.locator("select.mm-era").select_option("5.7")
    assert stepper.get_attribute("data-current-era") == "5.7" and stepper.get_attribute("data-current") == "1"
    assert stepper.locator(".mm-frame:visible").count() == 1
    assert stepper.locator(".mm-frame.mm-current img").first.get_attribute("src") != src618
    compare.locator("input.mm-range").fill(compare.get_attribute("data-steps"))
    assert "the eras disagree" in compare.locator(".mm-frame.mm-current").inner_text()
    assert guarded.refused == []


def test_student_book_has_no_solutions_and_instructor_book_has_them(book, guarded):
    """The instructor book folds a solution under each exercise and has the
    instructor guide; the student book has neither (no solution text anywhere)."""
    guarded.goto(f"{book['url']}/book-instructor/02-cow.html")
    sols = guarded.locator("details.mm-solution")
    assert sols.count() >= 2
    assert not sols.first.evaluate("d => d.open")                          # folded
    answers = guarded.evaluate("""() => Array.from(document.querySelectorAll('details.mm-solution'))
        .map(d => d.querySelector('summary').textContent)""")
    assert all(a.startswith("Solution (") for a in answers)
    guarded.goto(f"{book['url']}/book-instructor/index.html")
    assert guarded.locator("a[href='instructor-guide.html']").count() == 1
    student = book["dir"] / "book"
    text = "".join(p.read_text() for p in student.glob("*.html"))
    assert "details class=\"mm-solution\"" not in text and "Solution (" not in text
    assert "INSTRUCTOR-ONLY-ANSWER" not in text and not (student / "instructor-guide.html").exists()
    guarded.goto(f"{book['url']}/book/02-cow.html")
    assert guarded.locator("details.mm-solution").count() == 0
    # hints stay available to students, folded one at a time
    assert guarded.locator("details.mm-book-hints").count() >= 1


def test_links_between_pages_resolve(book, guarded):
    """Links to notebooks (*.ipynb) and guides (*.md) point at the book's own pages."""
    guarded.goto(f"{book['url']}/book/a-guide.html")
    href = guarded.locator("main a", has_text="glossary").first.get_attribute("href")
    assert href == "glossary.html#gup"
    guarded.goto(f"{book['url']}/book/02-cow.html")
    hrefs = guarded.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
    assert not [h for h in hrefs if ".ipynb" in h and not h.startswith("http")]
