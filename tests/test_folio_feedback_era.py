"""Feedback on a large-folio write fault explains the outcome by the rule of the question's own kernel era."""

import pytest

from mmkit.exercises import generate
from mmkit.exercises.folio import FOLIO_MISCONCEPTIONS


@pytest.fixture(autouse=True)
def _lecturer(monkeypatch, tmp_path):
    """No release mode: the tests read the answer key."""
    monkeypatch.delenv("MMKIT_RELEASE", raising=False)
    monkeypatch.setenv("MMKIT_RELEASE_CONFIG", str(tmp_path / "none.toml"))


def _reuse_feedback(q):
    key = q.answer_key()
    vals = list(key) if len(q.parts) > 1 else [key]
    i = next(i for i, p in enumerate(q.parts) if p.type == "fault")
    assert vals[i] == "copy"
    vals[i] = "reuse"
    ok, msgs = q.evaluate(tuple(vals) if len(vals) > 1 else vals[0])
    assert ok is False
    return " ".join(msgs)


def test_old_kernel_folio_question_cites_its_own_rule():
    """The difficulty-3 folio question at seed 1 runs on 5.19: answering "reuse" gets the refcount rule of that era (v5.9 to 2024), not v6.15's folio_maybe_mapped_shared()."""
    q = generate("folio", seed=1, difficulty=3)
    assert q.params["era"] == "5.19" and q.era.large_reuse == "refcount"
    text = _reuse_feedback(q)
    assert "folio_maybe_mapped_shared" not in text and "v6.15" not in text
    assert "refcount is 1" in text and "09854ba94c6a" in text


def test_each_large_reuse_era_has_its_explanation():
    """Over folio questions whose write fault copies a page of a large folio, "reuse" is explained by the era's rule: MM-ID slots only for v6.15+, never-reused for 2024-v6.14, refcount 1 for v5.9 on, mapcount up to v5.8."""
    want = {"mm_id": "reuse_while_folio_shared", "never": "large_reuse_never_then",
            "refcount": "large_reuse_last_mapping", "mapcount": "large_reuse_mapcount_then"}
    seen = set()
    for seed in range(1, 80):
        q = generate("folio", seed=seed, difficulty=3)
        if not any(p.type == "fault" for p in q.parts):
            continue
        key = q.answer_key()
        vals = list(key) if len(q.parts) > 1 else [key]
        if vals[next(i for i, p in enumerate(q.parts) if p.type == "fault")] != "copy":
            continue
        text = _reuse_feedback(q)
        m = FOLIO_MISCONCEPTIONS[want[q.era.large_reuse]]
        if m.explain.split(".")[0] in text:
            seen.add(q.era.large_reuse)
        for other, k in want.items():
            if other != q.era.large_reuse:
                assert FOLIO_MISCONCEPTIONS[k].explain.split(".")[0] not in text, (seed, q.era.name, k)
    assert "refcount" in seen and len(seen) >= 2, seen
