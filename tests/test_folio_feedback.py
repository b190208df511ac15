"""Notebook 09's predictions are answerable and their wrong answers get large-folio feedback."""
import json
from pathlib import Path

from mmkit.exercises import predict
from mmkit.viz.folio import mm_slots

NB = Path(__file__).resolve().parent.parent / "notebooks" / "09-large-folios.ipynb"


def _cells():
    return {c["id"]: "".join(c["source"]) for c in json.loads(NB.read_text())["cells"]}


def test_q_reuse_copy_names_the_large_folio_rule():
    """Answering "copy" for the parent's write to a page of its PTE-mapped THP names the 'never reused /
    reuse at refcount 1' misconception, not a pin or mprotect one."""
    q = predict("thp_fork_cow", after=6, fields=("fault", "exclusive"), who="parent K")
    text = " ".join(map(str, q.evaluate(("copy", True))[1]))
    assert "a page of a large folio is never reused" in text
    assert "read-only pin" not in text and "pinned" not in text


def test_q_mthp_refcount_one_names_the_folio_refcount():
    """Refcount 1 for a reused page of an mTHP is explained by the folio's shared refcount."""
    q = predict("mthp_fork_cow", after=5, fields=("fault", "refcount", "mapcount"), who="parent J")
    text = " ".join(map(str, q.evaluate(("copy", 1, 1))[1]))
    assert "a page of a large folio counted on its own" in text
    assert "mprotect" not in text


def test_reuse_rule_is_taught_before_the_question():
    """The markdown before q_reuse states the v6.15 rule (MM IDs, refcount == large mapcount)."""
    c = _cells()
    assert "refcount == large mapcount" in c["3e111087"] and "v6.15" in c["3e111087"]


def test_table_cell_defines_what_it_uses():
    """09's last-write table defines the pre-6.15 era itself instead of using the widget cell's."""
    assert 'older = era("6.18").replace(' in _cells()["36978e8b"]


def test_mm_slots_in_words():
    """MM-ID slots read as words, id 0 as a free slot."""
    assert mm_slots((1, 0), {1: "P"}) == "slot 0: mm 1 (P), slot 1: empty"
    assert mm_slots(()).startswith("none")


def _text(q, answer):
    return " ".join(map(str, q.evaluate(answer)[1]))


def test_page_mapcount_given_the_large_mapcount_is_named():
    """09's q_split answered (512, 512, False): the page's mapcount given the folio's total mapcount is named as
    such, not as 'the mapcount counts every holder' (page cache, pipe buffers)."""
    q = predict("thp_fork_cow", after=3, fields=("refcount", "mapcount", "exclusive"), who="parent K")
    text = _text(q, (512, 512, False))
    assert "a page's mapcount is the folio's total mapcount" in text
    assert "every holder" not in text and "pipe buffers" not in text
    q = predict("mthp_fork_cow", after=5, fields=("fault", "refcount", "mapcount"), who="parent J")
    assert "a page's mapcount is the folio's total mapcount" in _text(q, ("reuse", 16, 16))


def test_large_folio_refcount_feedback_never_weighs_a_pin_1024():
    """Wrong refcounts of a page of a large folio (513, 1024 for 512; 15, 32 for 16) get the large-folio rule
    (a pin adds 1), never the small page's '1024 per FOLL_PIN'."""
    q = predict("thp_fork_cow", after=3, fields=("refcount", "mapcount", "exclusive"), who="parent K")
    for r in (513, 1024):
        text = _text(q, (r, 1, False))
        assert "1024 per FOLL_PIN" not in text and "a pin adds 1" in text
    q = predict("mthp_fork_cow", after=5, fields=("fault", "refcount", "mapcount"), who="parent J")
    for r in (15, 32):
        text = _text(q, ("reuse", r, 1))
        assert "1024 per FOLL_PIN" not in text and "a pin adds 1" in text


def test_q_reuse_exclusive_feedback_is_the_large_folio_rule():
    """q_reuse with PageAnonExclusive wrong is not told 'reused by a fault after it found the refcount at 1'
    (false for a large folio); "yes" is read as True, as for every True-or-False part."""
    q = predict("thp_fork_cow", after=6, fields=("fault", "exclusive"), who="parent K")
    text = _text(q, ("reuse", False))
    assert "refcount at 1" not in text and "PageAnonExclusive is kept per page" in text
    assert q.evaluate(("reuse", "yes"))[0] is True and q.evaluate(("reuse", "no"))[0] is False
