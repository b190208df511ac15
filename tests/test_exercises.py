"""The exercise checkers: right answers pass, typical wrong answers fail with
the misconception behind them, and no message gives the answer away."""

import random

import pytest

from mmkit import MMError
from mmkit.errors import InvalidArgument
from mmkit.exercises import FORMS, KINDS, generate, predict
from mmkit.exercises.kinds import _counter, _fault, _value, Builder, make_question
from mmkit.exercises.program import Program
from mmkit.exercises.question import Part, Question

ALL_KINDS = list(KINDS)


def _q(ops, parts, era="6.18"):
    """A question on an explicit program (parts built from a Builder that ran it)."""
    return Question(Program(ops), parts, {"kind": "test", "seed": 0, "era": era}, "test")


def _built(lines, era="6.18"):
    """Run ``lines`` (verb, args...) through a Builder; returns it."""
    b = Builder(random.Random(0), era)
    for ln in lines:
        if ln[0] == "write":
            b.write(*ln[1:])
        else:
            b.do(*ln)
    return b


def _msgs(q, answer):
    ok, msgs = q.evaluate(answer)
    return ok, " ".join(msgs)


BASE = [("spawn", "P"), ("mmap", "P", "a"), ("write", "P")]


# -- generation ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_same_seed_same_question(kind):
    """A seed reproduces its exercise exactly (a lecturer can hand out seeds)."""
    a, b = generate(kind, 11), generate(kind, 11)
    assert str(a) == str(b)
    assert a.answer_key() == b.answer_key()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_seeds_give_variety(kind):
    """Different seeds give different programs: there is always more practice."""
    progs = {generate(kind, s).source.code() for s in range(30)}
    assert len(progs) >= 8


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_answer_key_passes_its_own_check(kind):
    """For 40 seeds per kind, the computed answer is accepted."""
    for seed in range(40):
        q = generate(kind, seed)
        assert q.evaluate(q.answer_key())[0] is True, (kind, seed)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_question_echoes_its_parameters(kind):
    """Every parameter needed to reproduce the question is printed with it."""
    q = generate(kind, 5, era="5.9" if kind != "truncate" else "6.18")
    text = str(q)
    assert f"kind={kind}" in text and "seed=5" in text and "form=predict" in text and "era=" in text
    assert 'k = Kernel(era="' in text


def test_random_seed_is_shown():
    """Without a seed one is drawn, and shown, so the question can be regenerated."""
    q = generate("cow")
    again = generate("cow", q.params["seed"])
    assert str(q) == str(again)


def test_bad_arguments():
    """Unknown kinds, forms, eras and seeds are refused with the valid choices."""
    with pytest.raises(InvalidArgument, match="kinds are"):
        generate("nope", 1)
    with pytest.raises(InvalidArgument, match="forms are"):
        generate("cow", 1, form="essay")
    with pytest.raises(InvalidArgument, match="offers"):
        generate("truncate", 1, form="inverse")
    with pytest.raises(InvalidArgument):
        generate("cow", 1, era="4.4")
    with pytest.raises(InvalidArgument):
        generate("cow", -1)


def test_program_lines_are_runnable_code():
    """The printed program is real mmkit code: executing it gives the same state."""
    from mmkit import Kernel
    q = generate("pin", 3)
    ns = {"Kernel": Kernel}
    exec(q.source.code(era="6.18"), ns)
    info = ns["k"].page(ns["P"], ns["a"])
    assert info == q.run.page("P", "a")


# -- checking: placeholders and formats ----------------------------------------------------
def test_placeholder_is_not_an_attempt():
    """`...` means "no answer yet": neither right nor wrong, no error."""
    q = generate("counters", 1)
    ok, msgs = q.evaluate(...)
    assert ok is None and "replace ..." in msgs[0]


def test_answer_forms_tuple_dict_keywords():
    """A tuple, a dict or keywords are accepted; strings and 0/1 for bools too."""
    b = _built(BASE + [("fork", "P", "C")])
    q = _q(b.ops, [_counter("P", "a", f) for f in ("refcount", "mapcount", "exclusive")])
    assert q.evaluate((2, 2, False))[0] is True
    assert q.evaluate({"refcount": 2, "mapcount": 2, "exclusive": False})[0] is True
    assert q.evaluate(refcount="2", mapcount=2, exclusive="no")[0] is True
    assert q.evaluate((2, 2, 0))[0] is True


def test_unreadable_answer_says_how_to_answer():
    """A malformed answer is not counted wrong: the message shows the expected form."""
    q = generate("counters", 2)
    ok, m = _msgs(q, (1, 2))
    assert ok is None and "Answer with" in m
    ok, m = _msgs(q, ("x", 1, 0, True))
    assert ok is None and "expected an int" in m


# -- misconceptions --------------------------------------------------------------------
def test_cve_reuse_answer_is_the_mapcount_misconception():
    """CVE-2020-29374: predicting "reuse" after vmsplice + unmap in the child
    is what a mapcount-deciding kernel did; the checker says so."""
    b = _built(BASE + [("fork", "P", "C"), ("vmsplice", "C", "a", "pipe"), ("munmap", "C", "a"), ("write", "P")])
    b.do("pipe_read", "pipe")
    q = _q(b.ops, [_fault(b, -2, "P"), _value(b, -1, "pipe", "", reader="pipe")])
    assert q.evaluate(("copy", "1"))[0] is True
    ok, m = _msgs(q, ("reuse", "2"))
    assert ok is False
    assert "mapcount" in m and "wp_can_reuse_anon_folio()" in m
    # the message names the rule, not the answer
    assert "copy" not in m.split("COW decided on the mapcount")[0]


def test_same_cve_under_5_7_expects_the_leak():
    """Under era 5.7 the model computes the leak; today's answer is then the mistake."""
    b = _built(BASE + [("fork", "P", "C"), ("vmsplice", "C", "a", "pipe"), ("munmap", "C", "a"), ("write", "P")],
               era="5.7")
    b.do("pipe_read", "pipe")
    q = _q(b.ops, [_fault(b, -2, "P"), _value(b, -1, "pipe", "", reader="pipe")], era="5.7")
    assert q.evaluate(("reuse", "2"))[0] is True
    ok, m = _msgs(q, ("copy", "1"))
    assert ok is False and "old kernel" in m


def test_pin_counted_as_one_reference():
    """refcount 2 instead of 1025 for a pinned page: the pin bias is explained."""
    b = _built(BASE + [("pin", "P", "a", "pin", True, True)])
    q = _q(b.ops, [_counter("P", "a", "refcount")])
    assert q.evaluate(1025)[0] is True
    ok, m = _msgs(q, 2)
    assert ok is False and "GUP_PIN_COUNTING_BIAS" in m and "1025" not in m


def test_refcount_given_as_mapcount():
    """refcount = mapcount with a pipe holding the page: "mapped once is not only user"."""
    b = _built(BASE + [("vmsplice", "P", "a", "pipe")])
    q = _q(b.ops, [_counter("P", "a", "refcount")])
    ok, m = _msgs(q, 1)
    assert ok is False and "refcount vs mapcount" in m


def test_pipe_counted_as_a_mapping():
    """mapcount 2 with one PTE and one pipe buffer: a pipe maps nothing."""
    b = _built(BASE + [("vmsplice", "P", "a", "pipe")])
    q = _q(b.ops, [_counter("P", "a", "mapcount")])
    ok, m = _msgs(q, 2)
    assert ok is False and "maps nothing" in m


def test_gup_reference_counted_as_pin():
    """pincount 1 for a get_user_pages() reference: pinned vs referenced."""
    b = _built(BASE + [("gup", "P", "a", "ref")])
    q = _q(b.ops, [_counter("P", "a", "pincount"), _counter("P", "a", "refcount")])
    assert q.evaluate((0, 2))[0] is True
    ok, m = _msgs(q, (1, 1025))
    assert ok is False and "pinned vs referenced" in m


def test_exclusive_after_child_exit():
    """After fork and the child's exit the page is mapped once but not
    exclusive: "mapped once is not exclusive"."""
    b = _built(BASE + [("fork", "P", "C"), ("exit", "C")])
    q = _q(b.ops, [_counter("P", "a", "mapcount"), _counter("P", "a", "exclusive")])
    assert q.evaluate((1, False))[0] is True
    ok, m = _msgs(q, (1, True))
    assert ok is False and "mapped once is not exclusive" in m and "mapcount is right" not in m


def test_unshare_is_not_write():
    """After a R/O pin unshares a shared page, predicting a writable PTE is
    the "unsharing grants write" mistake."""
    b = _built(BASE + [("fork", "P", "C"), ("pin", "P", "a", "pin", False, False)])
    q = _q(b.ops, [_counter("P", "a", "writable"), _counter("P", "a", "exclusive")])
    assert q.evaluate((False, True))[0] is True
    ok, m = _msgs(q, (True, True))
    assert ok is False and "FAULT_FLAG_UNSHARE" in m


def test_read_only_pin_without_unshare_is_the_5_9_kernel():
    """Predicting that the device misses the owner's write after a R/O pin on
    a shared page is what 5.9-5.18 did: the no_unshare misconception."""
    b = _built(BASE + [("fork", "P", "C"), ("pin", "P", "a", "pin", False, True), ("write", "P")])
    b.do("dev_read", "pin")
    q = _q(b.ops, [_value(b, -1, "device", "", reader="pin")])
    assert q.evaluate("2")[0] is True
    ok, m = _msgs(q, "1")
    assert ok is False and "FAULT_FLAG_UNSHARE" in m and "5.9" in m


def test_fork_shares_pinned_page_mistake():
    """Predicting that fork shares a pinned page: the early-COW rule is explained."""
    b = _built(BASE + [("pin", "P", "a", "pin", True, True), ("fork", "P", "C")])
    shared = Part("fork", "shared", lambda run: "shared" if run.page("P", "a").pfn == run.page("C", "a").pfn
                  else "copied", key=("P", "a", 0))
    q = _q(b.ops, [shared, _counter("P", "a", "writable")])
    assert q.evaluate(("copied", True))[0] is True
    ok, m = _msgs(q, ("shared", False))
    assert ok is False and "copy_present_page()" in m


def test_foll_get_does_not_unshare():
    """Predicting that get_user_pages() unshares a shared page is refused with
    the FOLL_GET explanation."""
    b = _built(BASE + [("fork", "P", "C"), ("gup", "P", "a", "ref")])
    gi = b.n - 1
    copied = Part("gup", "copied", lambda run: "copied" if run.lines[gi].after.pfn != run.lines[gi].before.pfn
                  else "same page", key=("P", "a", 0))
    q = _q(b.ops, [copied])
    assert q.evaluate("same page")[0] is True
    ok, m = _msgs(q, "copied")
    assert ok is False and "FOLL_GET never unshares" in m


def test_migrating_a_pinned_page():
    """Predicting that a pinned page migrates names the -EAGAIN rule."""
    b = _built(BASE + [("pin", "P", "a", "pin", True, True), ("migrate", "P", "a")])
    res = Part("result", "migrated", lambda run: "migrated" if run.lines[-1].value == 1 else "EAGAIN",
               key=("P", "a", 0))
    q = _q(b.ops, [res])
    assert q.evaluate("EAGAIN")[0] is True
    ok, m = _msgs(q, "migrated")
    assert ok is False and "folio_try_share_anon_rmap_pte()" in m


def test_shared_page_migrates():
    """Predicting that a page shared after fork cannot move: the rmap walk is explained."""
    b = _built(BASE + [("fork", "P", "C"), ("migrate", "P", "a")])
    res = Part("result", "migrated", lambda run: "migrated" if run.lines[-1].value == 1 else "EAGAIN",
               key=("P", "a", 0))
    q = _q(b.ops, [res])
    assert q.evaluate("migrated")[0] is True
    ok, m = _msgs(q, "EAGAIN")
    assert ok is False and "rmap walk" in m


def _truncate_prog(shared, holder):
    b = Builder(random.Random(0), "6.18")
    b.do("open", "f", 1, True)
    b.do("fwrite", "f", 0, "1")
    b.do("spawn", "P")
    b.do("mmap_file", "P", "m", "f", 1, shared)
    b.do("write", "P", "m", "2")
    if holder:
        b.do("pin", "P", "m", "pin", True, True)
    b.do("truncate", "f", 0)
    b.do("read", "P", "m")
    parts = [_value(b, -1, "access", "", reader="mapping", key=("P", "m", 0))]
    if holder:
        b.do("dev_read", "pin")
        parts.append(_value(b, -1, "device", "", reader="pin"))
    return b, parts


def test_private_cow_copy_does_not_survive_truncation():
    """Predicting that a private COW copy still reads its data after truncation
    is the even_cows mistake."""
    b, parts = _truncate_prog(shared=False, holder=False)
    q = _q(b.ops, parts)
    assert q.evaluate("SIGBUS")[0] is True
    ok, m = _msgs(q, "2")
    assert ok is False and "even_cows" in m


def test_pinned_page_outlives_its_file():
    """Predicting that the device sees SIGBUS (or nothing) after truncation:
    the pin keeps the orphaned page alive."""
    b, parts = _truncate_prog(shared=True, holder=True)
    q = _q(b.ops, parts)
    assert q.evaluate(("SIGBUS", "2"))[0] is True
    ok, m = _msgs(q, ("SIGBUS", "SIGBUS"))
    assert ok is False and "outlives its file" in m


def test_zero_page_counted():
    """Counting a mapping for the zero page is corrected."""
    b = _built([("spawn", "P"), ("mmap", "P", "a"), ("read", "P", "a")])
    q = _q(b.ops, [_counter("P", "a", "mapcount")])
    assert q.evaluate(0)[0] is True
    ok, m = _msgs(q, 1)
    assert ok is False and "zero page" in m


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_wrong_answers_are_wrong_and_never_print_the_key(kind):
    """For many seeds, a wrong value of each part is refused, and the message
    does not contain the right answer tuple."""
    for seed in range(25):
        q = generate(kind, seed)
        key = q.answer_key()
        vals = list(key) if isinstance(key, tuple) else [key]
        for i, p in enumerate(q.parts):
            w = list(vals)
            v = w[i]
            if isinstance(v, bool):
                w[i] = not v
            elif isinstance(v, int):
                w[i] = v + 1
            elif p.type in p.CHOICES:
                w[i] = next(c for c in p.CHOICES[p.type] if c != v)
            else:
                w[i] = "SIGBUS" if v != "SIGBUS" else "7"
            ok, msgs = q.evaluate(tuple(w) if len(w) > 1 else w[0])
            assert ok is False, (kind, seed, w)
            text = " ".join(msgs)
            assert repr(key) not in text
            assert f"{p.name} is right" not in text


# -- inverse and build forms ------------------------------------------------------------
@pytest.mark.parametrize("kind", [k for k in ALL_KINDS if "inverse" in KINDS[k].forms])
def test_inverse_questions(kind):
    """Inverse questions have 3-4 programs with distinct end states; exactly
    the right letter passes; a wrong letter is explained by what differs."""
    for seed in range(8):
        q = generate(kind, seed, form="inverse")
        letter = q.answer_key() if q.parts else q._checker.letter
        assert 3 <= len(q.choices) <= 4
        assert len(set(q._checker.states.values())) == len(q.choices)
        assert q.evaluate(letter)[0] is True
        assert q.evaluate(letter.lower())[0] is True
        for x in q.choices:
            if x != letter:
                ok, m = _msgs(q, x)
                assert ok is False and "instead of" in m and f"({letter})" not in m
        assert q.evaluate("Z")[0] is None


@pytest.mark.parametrize("kind", [k for k in ALL_KINDS if "build" in KINDS[k].forms])
def test_build_questions(kind):
    """Build questions accept any program reaching the target and explain a near miss."""
    for seed in range(6):
        q = generate(kind, seed, form="build")
        prog = q._checker.program

        def build(k, prog=prog):
            env = {}
            for op in prog.ops:
                try:
                    op.apply(k, env)
                except MMError:         # a signal or a failed call is an outcome of that line
                    pass
            return env["P"], env["a"]
        assert q.evaluate(build)[0] is True


def test_build_near_miss_explains_pin_bias():
    """A build that uses get_user_pages() where a pin is needed is told about the 1024 bias."""
    q = make_question("counters", 0, "build")
    q._checker.target = (1025, 1, 1, True, True)

    def build(k):
        p = k.spawn("P")
        a = p.mmap(1)
        p.write(a, b"x")
        p.get_user_pages(a)
        return p, a
    ok, m = _msgs(q, build)
    assert ok is False and "1024" in m

    def right(k):
        p = k.spawn("P")
        a = p.mmap(1)
        p.write(a, b"x")
        p.pin(a, write=True)
        return p, a
    assert q.evaluate(right)[0] is True


def test_build_errors_are_reported():
    """A build() that raises or returns nonsense gets a message, not a traceback."""
    q = generate("cow", 1, form="build")
    assert q.evaluate(lambda k: 1 / 0)[0] is False
    assert q.evaluate(lambda k: 42)[0] is None
    assert q.evaluate("not a function")[0] is None


# -- hints and solutions -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_three_hints_none_gives_the_answer(kind):
    """Three tiered hints; hint 3 is computed from the model but shows the state
    *before* the last line, not the answer."""
    q = generate(kind, 4)
    hs = q.hints()
    assert len(hs) == 3 and all(hs)
    assert repr(q.answer_key()) not in " ".join(hs)


def test_solution_is_folded(capsys):
    """Outside a notebook the solution prints; in a notebook it is a closed <details>."""
    q = generate("cow", 7)
    q.solution()
    out = capsys.readouterr().out
    assert "Solution" in out and repr(q.answer_key()) in out
    assert "<details" not in out


def test_check_prints_verdict_outside_notebook(capsys):
    """check() returns the verdict and prints it when there is no notebook."""
    q = generate("fork", 3)
    assert q.check(q.answer_key()) is True
    assert "✔" in capsys.readouterr().out
    assert q.attempts == [True]


def test_cli_prints_question_and_answers(capsys):
    """python -m mmkit.exercises -k KIND -s SEED -c prints questions with answers."""
    from mmkit.exercises.__main__ import main
    assert main(["-k", "unshare", "-s", "3", "-n", "2", "-c"]) == 0
    out = capsys.readouterr().out
    assert out.count("kind=unshare") == 2 and "Answer:" in out
    assert main(["--list"]) == 0
    assert "truncate" in capsys.readouterr().out


# -- predict on topic scenarios ----------------------------------------------------------------
def test_predict_on_a_scenario():
    """predict() asks about a topic scenario step; the model computes the answer."""
    q = predict("fork", after="fork", fields=("refcount", "mapcount", "exclusive", "writable"), who="parent")
    assert q.evaluate((2, 2, False, False))[0] is True
    ok, m = _msgs(q, (2, 2, True, False))
    assert ok is False and "PageAnonExclusive" in m


def test_predict_cve_step_mapcount_misconception():
    """On the vmsplice_child scenario, predicting reuse is the mapcount misconception."""
    q = predict("vmsplice_child", after=5, fields=("fault",), who="parent")
    assert q.answer_key() == "copy"
    ok, m = _msgs(q, "reuse")
    assert ok is False and "mapcount" in m


def test_predict_bad_step():
    with pytest.raises(InvalidArgument):
        predict("fork", after="nope")
    with pytest.raises(InvalidArgument):
        predict("fork", after=1, who="nobody")


def test_forms_constant():
    assert FORMS == ("predict", "inverse", "build")
