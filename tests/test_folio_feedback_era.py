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


# -- what a folio question may ask in its era --------------------------------------------------------
from mmkit.exercises.folio import LARGE_GENERIC, era_has  # noqa: E402
from mmkit.exercises.misconceptions import MISCONCEPTIONS  # noqa: E402


def _folio_questions(difficulty, seeds=range(1, 61)):
    return [generate("folio", seed=s, difficulty=difficulty) for s in seeds]


def test_folio_questions_ask_only_what_their_era_has():
    """No folio question asks _large_mapcount before v6.10 (it asks the total mapcount, which every era
    computes), PageAnonExclusive before v5.19, or 'maybe mapped shared' before v6.15; the question's
    sentence does not name a flag its era lacks."""
    seen = set()
    for d in (1, 2, 3):
        for q in _folio_questions(d):
            for p in q.parts:
                assert era_has(q.era, p.type), (d, q.params["seed"], q.era.name, p.name)
                seen.add((q.era.name, p.type))
            if not q.era.anon_exclusive:
                assert "PageAnonExclusive" not in q.text, (d, q.params["seed"])
    assert ("5.7", "total_mapcount") in seen and ("6.18", "large_mapcount") in seen
    assert not any(t == "large_mapcount" for e, t in seen if e != "6.18")
    assert not any(t == "exclusive" for e, t in seen if e in ("5.7", "5.9"))
    assert not any(t == "maybe_shared" for e, t in seen if e != "6.18")


def test_era_has_follows_the_kernel_versions():
    """_large_mapcount from v6.10 (05c5323b2a34), PageAnonExclusive from v5.19, MM IDs from v6.15."""
    assert [era_has(e, "large_mapcount") for e in ("5.7", "5.19", "6.2", "6.18")] == [False, False, False, True]
    assert [era_has(e, "exclusive") for e in ("5.7", "5.9", "5.19", "6.18")] == [False, False, True, True]
    assert [era_has(e, "maybe_shared") for e in ("6.2", "6.18")] == [False, True]


def _wrong_answers(q):
    """(part, learner value, message) for plausible wrong values of every part."""
    key = q.answer_key()
    key = list(key) if len(q.parts) > 1 else [key]
    for i, p in enumerate(q.parts):
        t = key[i]
        if isinstance(t, bool):
            cands = [not t]
        elif isinstance(t, int):
            cands = sorted({t + 1, t - 1, 1, 0, t + 511, t + 1023, 512, 16, 2, 2 * t} - {t})
        else:
            cands = [x for x in ("reuse", "copy", "no fault", "first touch") if x != t]
        for c in cands:
            ans = list(key)
            ans[i] = c
            ok, msgs = q.evaluate(tuple(ans) if len(ans) > 1 else ans[0])
            assert ok is False
            yield p, c, next((m for m in msgs if m.startswith(p.name + ":")), "")


#: small-page misconceptions that also hold for a page of a large folio
_NEUTRAL = {"pinned_not_exclusive", "writable_no_fault", "unshare_is_write", "first_touch_missed"}


def test_large_folio_parts_never_get_small_page_feedback():
    """A wrong refcount, mapcount, PageAnonExclusive, pin count or write fault about a page of a large folio
    is explained by a large-folio misconception (or counting guidance for large folios), never by a
    small-page one (1024 per pin, the page cache's reference, reuse at refcount 1...)."""
    small = {m.explain[:80]: k for k, m in MISCONCEPTIONS.items() if k not in _NEUTRAL}
    checked = 0
    for d in (1, 2, 3):
        for q in _folio_questions(d, range(1, 41)):
            run = q._model_run()
            for p, c, msg in _wrong_answers(q):
                if p.type not in ("refcount", "mapcount", "exclusive", "pincount", "fault") or p.key is None:
                    continue
                info = run.lines[p.line].before if p.type == "fault" else run.page(*p.key)
                if info is None or not info.present or info.nr_pages == 1:
                    continue
                checked += 1
                for explain, k in small.items():
                    assert explain not in msg, (d, q.params["seed"], p.name, c, k)
                assert "1024 per FOLL_PIN" not in msg and "page cache" not in msg, (d, q.params["seed"], p.name, c)
    assert checked > 100
    assert "a pin adds 1" in LARGE_GENERIC["refcount"]
