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
