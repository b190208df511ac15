"""Self-checking lab tasks: predict, build, then let the model judge.

The labs (notebooks 07 and 08) give the learner work in phases of rising
difficulty, in the spirit of the CS:APP labs.  Every task is checked by
running the model, never against a typed-in answer:

History lab (07)
    1. :func:`flip_task` -- flip one era rule and predict which cow.c
       cases break (checked with :func:`~mmkit.labs.history.cow_table`).
    2. :func:`sequence_task` -- write your own sequence of at most four
       operations that leaks under 5.7, then one that leaves a stale
       read-only pin under 5.9 (checked by replaying it in the attack
       finder's world, :func:`~mmkit.labs.attack.run_ops`).
    3. :func:`length_task` -- predict the length of the shortest attack
       before running :func:`~mmkit.labs.attack.find_attack`.
    4. :func:`eras_task` -- predict under which eras your sequence breaks
       its promise, and so show that it is harmless under 6.18.

Mapcount lab (08)
    1. :func:`winner_task` -- predict which tracking mode does the least
       work in each workload, before the results table.
    2. :func:`defend_task` -- defend a design against the exact count, with
       a numeric part: the break-even cost of an rmap walk step.
    3. :func:`large_task` -- on large folios, predict which answers
       CONFIG_NO_PAGE_MAPCOUNT gets wrong in each workload, before the
       large-folio results (:mod:`mmkit.labs.large`).

Each task has ``check(answer)`` (displays the verdict, returns True /
False, or None for "no answer yet"), ``evaluate(answer)`` (the same
without display), ``hint()`` (three hints, then "no more") and shows its
statement as its repr.

Examples
--------
>>> t = sequence_task("5.7", "no_leak")
>>> t.evaluate("fork; C vmsplices; C munmaps; P writes")[0]
True
>>> t.evaluate("fork; P writes")[0]
False
"""

import html
from functools import lru_cache

from .. import release
from ..era import ERAS, era as _era
from ..errors import InvalidArgument
from ..exercises.question import display_html
from . import attack

__all__ = ["Task", "flip_task", "sequence_task", "length_task", "eras_task", "winner_task", "defend_task",
           "large_task", "parse_ops", "WORK"]

_CSS = """<style>
.mm-task{border-left:4px solid #8a5bb5;padding:.4em .8em;margin:.4em 0;background:#f8f5fb}
.mm-task-check{padding:.3em .6em;margin:.3em 0;border-radius:3px}
.mm-task-check[data-ok=true]{background:#e6f4e6;border-left:4px solid #2e8b57}
.mm-task-check[data-ok=false]{background:#fbeeee;border-left:4px solid #c0392b}
.mm-task-check[data-ok=none]{background:#f4f4f4;border-left:4px solid #999}
</style>"""


class Task:
    """A lab task: a statement, a checker and three hints.

    Parameters
    ----------
    title, text : str
        The task's name and statement (plain text; ``text`` may span lines).
    answer_form : str
        How to answer, e.g. ``'t.check("fork; C vmsplices; ...")'``.
    judge : callable
        ``judge(answer) -> (ok, [messages])``; ok is None for an unreadable
        answer.
    hints : list of 3 str
    """

    _hints = release.Secret("t._hints (every hint tier)")
    _judge = release.Secret("t._judge (the judge's detailed feedback)")

    def __init__(self, title, text, answer_form, judge, hints):
        self.title = title
        self.text = text
        self.answer_form = answer_form
        self._judge = judge
        self._hints = list(hints)
        self._hint_level = 0
        self.attempts = []
        self.solved = False

    def evaluate(self, answer=...):
        """``(ok, messages)`` without displaying anything."""
        if answer is ...:
            return None, ["No answer yet: replace ... with your answer."]
        with release._internal():
            ok, msgs = self._judge(answer)
        if ok is not None and release.verdict_only():
            return ok, ["Right." if ok else "Not right. (This course's release says only right or wrong.)"]
        return ok, msgs

    def check(self, answer=...):
        """Check ``answer``, display the verdict and return True / False (None: no answer yet)."""
        ok, msgs = self.evaluate(answer)
        if ok is not None:
            self.attempts.append(ok)
            self.solved = self.solved or ok
        mark = {True: "✔", False: "✘", None: "…"}[ok]
        state = {True: "true", False: "false", None: "none"}[ok]
        body = "".join(f"<div>{html.escape(m)}</div>" for m in msgs)
        display_html(f'<div class="mm-task-check" data-ok="{state}"><b>{mark}</b> {body}</div>',
                     f"{mark} " + "\n  ".join(msgs))
        return ok

    @release.internal
    def hint(self):
        """The next of three hints; a fourth call says there are no more.
        In release mode (:mod:`mmkit.release`) only the hint tiers the
        lecturer allows are shown; with none allowed it raises
        :class:`~mmkit.release.ReleaseModeError`."""
        st = release.status()
        allowed = [i for i in range(1, len(self._hints) + 1) if i in st.hints]
        if not allowed:
            release.guard("Every hint")
        nxt = [i for i in allowed if i > self._hint_level]
        if not nxt:
            off = [str(i) for i in range(1, len(self._hints) + 1) if i not in allowed]
            msg = (f"There are no more hints: that was hint {self._hint_level} of {len(self._hints)}"
                   + (f" (hint {', '.join(off)} is turned off by {st.contact})" if off else "") + ".")
        else:
            self._hint_level = nxt[0]
            msg = f"Hint {self._hint_level}/{len(self._hints)}: {self._hints[self._hint_level - 1]}"
        display_html(f'<div class="mm-hint">{html.escape(msg)}</div>', msg)

    @release.internal
    def hints(self):
        """The hints as strings (in release mode, only the tiers the lecturer allows)."""
        st = release.status()
        return [h for i, h in enumerate(self._hints, 1) if i in st.hints]

    def __str__(self):
        return f"{self.title}\n{self.text}\nAnswer with {self.answer_form}"

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        e = html.escape
        text = "".join(f"<p>{e(p)}</p>" for p in self.text.split("\n\n"))
        return (_CSS + f'<div class="mm-task"><b>{e(self.title)}</b>{text}'
                f"<p>Answer with <code>{e(self.answer_form)}</code>; <code>.hint()</code> gives a hint.</p></div>")


# -- history lab ------------------------------------------------------------------------------
def _cases():
    from ..scenarios import COW_CASES
    return list(COW_CASES)


@lru_cache(maxsize=16)
def _flip_fails(base, rule, value):
    from .history import cow_table
    e = _era(base).replace(**{rule: value})
    t = cow_table(eras=[base, e])
    return tuple(t.fails(e.name)), tuple(t.fails(_era(base).name))


def flip_task(base="6.18", rule="reuse_rule", value="mapcount"):
    """Task: ``era(base).replace(rule=value)`` -- which cow.c cases fail now?

    Answer with the numbers (or names) of the failing cases, as listed in
    the statement; ``[]`` for none.
    """
    base_e = _era(base)
    if rule not in base_e.rules():
        raise InvalidArgument(f"unknown era rule {rule!r}; rules: {', '.join(base_e.rules())}")
    names = [c.name for c in _cases()]
    listing = "\n".join(f"{i:>2}. {n}" for i, n in enumerate(names, 1))

    def judge(answer):
        if isinstance(answer, (str, int)):
            answer = [answer]
        try:
            picked = set()
            for a in answer:
                if isinstance(a, int) and not isinstance(a, bool) and 1 <= a <= len(names):
                    picked.add(names[a - 1])
                elif isinstance(a, str) and a.strip() in names:
                    picked.add(a.strip())
                elif isinstance(a, str) and a.strip().isdigit() and 1 <= int(a) <= len(names):
                    picked.add(names[int(a) - 1])
                else:
                    raise ValueError(a)
        except (TypeError, ValueError) as err:
            return None, [f"Could not read {err}: answer with case numbers 1-{len(names)} (or names), e.g. [3, 4]."]
        fails, base_fails = _flip_fails(base_e.name, rule, value)
        fails = set(fails)
        if picked == fails:
            return True, [f"Correct: these {len(fails)} case(s) fail under {base_e.name} with {rule}={value!r}. "
                          "Run the table below to see them, and history.why() to see the decision that breaks each."]
        msgs = ["Not yet."]
        missed, extra = fails - picked, picked - fails
        if missed:
            msgs.append(f"{len(missed)} case(s) that the flip breaks are missing from your answer.")
        if extra:
            msgs.append(f"{len(extra)} case(s) you listed still pass: the flipped rule is not the only one that "
                        "protects them.")
        return False, msgs

    return Task(
        f"Task 1 (predict): flip {rule} to {value!r} in era {base_e.name}",
        f"k = Kernel(era=era({base_e.name!r}).replace({rule}={value!r})) keeps every rule of {base_e.name} but "
        f"this one. Which of the cow.c cases below fail under it? Predict before you run the table.\n\n"
        + listing,
        "t.check([numbers of the failing cases])", judge,
        ["Read the rule: where does the kernel consult it? (era_rules() and the six-kernels table above say "
         "which decision it drives.)",
         "With reuse_rule='mapcount' a write fault on a page that is *not* PageAnonExclusive reuses it when "
         "it is mapped once. A PageAnonExclusive page is still reused at once, whatever the counts. Which cases "
         "write to a page that is mapped once but not exclusive, while someone else still holds it?",
         "Look at the cases whose extra holder maps nothing: a pipe filled by vmsplice(). Is that page "
         "PageAnonExclusive at the moment of the write?"])


_BY_NAME = None


def _ops_by_name():
    global _BY_NAME
    if _BY_NAME is None:
        _BY_NAME = {str(op).lower(): op for op in attack.ALPHABET}
        _BY_NAME.update({"p forks": attack.ALPHABET[0], "p fork": attack.ALPHABET[0]})
    return _BY_NAME


def parse_ops(seq):
    """``"fork; C vmsplices; C munmaps; P writes"`` (or a list of such
    strings, or of :class:`~mmkit.labs.attack.Op`) -> tuple of Op.

    Raises
    ------
    InvalidArgument
        For an operation not in the attack finder's alphabet (the message
        lists it).
    """
    if isinstance(seq, str):
        items = [s for s in seq.replace("\n", ";").split(";") if s.strip()]
    else:
        items = list(seq)
    by = _ops_by_name()
    out = []
    for it in items:
        if isinstance(it, attack.Op):
            out.append(it)
            continue
        key = " ".join(str(it).split()).lower()
        if key not in by:
            raise InvalidArgument(f"unknown operation {it!r}; the alphabet is: "
                                  + "; ".join(str(op) for op in attack.ALPHABET))
        out.append(by[key])
    return tuple(out)


def _violations(ops, prop, era):
    return [(a, what, v, bad) for a, what, v, bad in attack.run_ops(ops, prop, era) if bad]


def _pins_ro(ops, actor):
    kinds = [op.verb for op in ops if op.actor == actor and op.verb in ("pin_ro", "pin_rw")]
    return kinds[-1] == "pin_ro" if kinds else False


def sequence_task(era="5.7", prop="no_leak", max_ops=4, ro_pin=None):
    """Task: write a sequence of at most ``max_ops`` operations (after the
    parent maps and writes its page) that breaks ``prop`` under ``era``.

    ``ro_pin=True`` (the default for ``"pin_coherent"``) asks for a stale
    *read-only* pin.  Answer with a string such as ``"fork; C vmsplices;
    C munmaps; P writes"``; the operations are those of
    :data:`mmkit.labs.attack.ALPHABET`.  The checker replays it in the
    attack finder's world and reads everything at the end.
    """
    e = _era(era)
    if prop not in attack.PROPERTIES:
        raise InvalidArgument(f"prop must be one of {', '.join(attack.PROPERTIES)}, not {prop!r}")
    if ro_pin is None:
        ro_pin = prop == "pin_coherent"
    goal = ("leaves a stale read-only pin" if ro_pin else
            "leaks data between the processes" if prop == "no_leak" else "leaves a stale pin")

    def judge(answer):
        try:
            ops = parse_ops(answer)
        except InvalidArgument as err:
            return None, [str(err)]
        if not ops:
            return None, ["Write at least one operation."]
        if len(ops) > max_ops:
            return False, [f"{len(ops)} operations: the task allows at most {max_ops}."]
        try:
            bad = _violations(ops, prop, e)
        except InvalidArgument as err:
            return False, [f"Not possible: {err}."]
        if ro_pin:
            bad = [b for b in bad if b[1] == "pin" and _pins_ro(ops, b[0])]
        s = "; ".join(map(str, ops))
        if bad:
            a, what, v, why = bad[0]
            twin = attack.COW_TWINS.get(s)
            msgs = [f"Broken, as asked: after {s}, {why}."]
            msgs.append(f"This is cow.c's own case {twin!r}." if twin else
                        "It is not one of cow.c's cases as written: the selftest has no case for it.")
            return True, msgs
        if ro_pin and _violations(ops, prop, e):
            return False, ["A pin goes stale, but it is a read-write one: the task asks for a read-only pin."]
        reads = attack.run_ops(ops, prop, e)
        seen = "; ".join(f"{a}'s {what} reads {v!r}" for a, what, v, _ in reads) or "nobody can read anything"
        return False, [f"Harmless under {e.name}: at the end {seen} -- the promise '{attack.PROPERTIES[prop]}' "
                       "holds."]

    alphabet = "; ".join(str(op) for op in attack.ALPHABET)
    return Task(
        f"Task ({e.name}, {prop}): a sequence that {goal}",
        f"The parent P has mapped one private anonymous page and written it. Write at most {max_ops} operations "
        f"that make the model of {e.name} break the promise '{attack.PROPERTIES[prop]}'"
        + (" through a read-only pin" if ro_pin else "") + f". The alphabet: {alphabet}.",
        't.check("fork; C ...; P writes")', judge,
        (["Which holder of the page maps nothing, so that the kernel's rule may not see it?",
          f"Under {e.name} a write fault reuses a page that is mapped once. How can the page the pipe holds "
          "end up mapped once while the other process still writes to it?",
          "Let the child take the reference, then lose its own mapping; then the parent writes."]
         if prop == "no_leak" else
         ["A pin goes stale when its owner's next write lands on a different page than the pinned one.",
          f"Under {e.name} there is no unsharing: a read-only pin lands on the page as it is. When does the "
          "owner's next write copy that page?",
          "Share the page first (fork), then pin it read-only, then write."])
        if ro_pin or prop == "no_leak" else
        ["A pin goes stale when its owner's next write lands on a different page than the pinned one.",
         "What makes the owner's PTE read-only while the pin holds the page?",
         "fork() or an mprotect() round trip, then a write."])


@lru_cache(maxsize=16)
def _shortest(era_name, prop, max_ops):
    r = attack.find_attack(ERAS[era_name] if era_name in ERAS else era_name, prop, max_ops=max_ops)
    return len(r.first.ops) if r.first else None


def length_task(era="5.7", prop="no_leak", max_ops=5):
    """Task: predict the length of the shortest sequence that breaks
    ``prop`` under ``era`` (answer an int, or ``None`` for "none within
    ``max_ops``").  The check runs :func:`~mmkit.labs.attack.find_attack`."""
    e = _era(era)

    def judge(answer):
        if answer is not None and (isinstance(answer, bool) or not isinstance(answer, int)):
            return None, ["Answer with an int (the number of operations) or None (no attack within the budget)."]
        n = _shortest(e.name, prop, max_ops)
        if answer == n:
            return True, ["Correct." + (f" Now run find_attack({e.name!r}, {prop!r}) to see every sequence of "
                                        "that length." if n else " find_attack() will come back empty.")]
        if n is None:
            return False, [f"No: within {max_ops} operations the search finds nothing to break under {e.name}."]
        if answer is None:
            return False, ["No: there is an attack within the budget."]
        return False, ["Too short: no sequence that short breaks it." if answer < n else
                       "Too long: a shorter sequence already breaks it."]

    return Task(
        f"Task (predict): how short can an attack on {prop} under {e.name} be?",
        f"The search tries every valid sequence of 1, 2, ... {max_ops} operations, shortest first (P has already "
        f"mapped and written its page). How many operations does the shortest sequence that breaks "
        f"'{attack.PROPERTIES[prop]}' under {e.name} have? Answer before you run it.",
        "t.check(4) -- an int, or None for 'none within the budget'", judge,
        ["Count the operations the bug needs: who must share the page, who must hold it without mapping it, "
         "and who writes?",
         "fork counts as one operation; the final reads are free (the search reads everything at the end).",
         "Your own sequence from the task before is an upper bound. Can any of its operations go?"])


def eras_task(seq, prop):
    """Task: predict under which eras ``seq`` breaks ``prop``; the answer
    is a list of era names.  The check replays it under every preset."""
    ops = parse_ops(seq)
    s = "; ".join(map(str, ops))

    def truth():
        out = []
        for name in ERAS:
            try:
                if _violations(ops, prop, name):
                    out.append(name)
            except InvalidArgument:
                pass
        return out

    def judge(answer):
        if isinstance(answer, str):
            answer = [answer]
        try:
            picked = {_era(a).name for a in answer}
        except (InvalidArgument, TypeError) as err:
            return None, [f"Could not read the eras: {err}. Eras: {', '.join(ERAS)}."]
        broken = set(truth())
        if picked == broken:
            return True, [f"Correct: it breaks under {', '.join(sorted(broken, key=list(ERAS).index)) or 'no era'}, "
                          f"and is harmless under {', '.join(e for e in ERAS if e not in broken)}."
                          + (" 6.18 holds: its rules (refcount-based reuse, PageAnonExclusive, unsharing) "
                             "close this hole." if "6.18" not in broken else "")]
        msgs = ["Not yet."]
        if picked - broken:
            msgs.append(f"{len(picked - broken)} era(s) you listed keep the promise for this sequence.")
        if broken - picked:
            msgs.append(f"{len(broken - picked)} era(s) where it breaks are missing.")
        return False, msgs

    return Task(
        "Task (predict): where does your sequence break, and is it harmless today?",
        f"Sequence: {s}. Under which eras ({', '.join(ERAS)}) does it break '{attack.PROPERTIES[prop]}'? "
        "Your answer must show it harmless under 6.18 -- or find a bug in the model.",
        't.check(["5.7", ...])', judge,
        ["Walk the era table: which rule does your sequence depend on, and in which era did it change?",
         "A fix can be undone: 5.8's forced COW break was reverted in 5.9 in favour of the refcount rule.",
         "attack.across_eras() answers it -- run it after you check."])


# -- mapcount lab ------------------------------------------------------------------------------
#: How the mapcount tasks measure a mode's work: counter updates plus rmap walk
#: steps (the walk policy, which always answers right).
WORK = ("atomics", "walk_steps")
_CHOICES = ("exact", "three_state", "ever_mapped", "none")


@lru_cache(maxsize=2)
def _results():
    from .mapcount import run_all
    return run_all()


def _work(r, mode, step_cost=1.0):
    return r.costs[mode].total("atomics") + step_cost * r.costs[mode].total("walk_steps")


def winner_task(results=None):
    """Task: for each workload, predict which mode does the least work
    (counter updates + rmap walk steps).  Answer ``{workload: mode}``;
    where modes tie, any of them counts.  ``folio`` is left out: for small
    folios it is the exact count under another name."""
    get = (lambda: results) if results is not None else _results

    def winners():
        out = {}
        for name, r in get().items():
            best = min(_work(r, m) for m in _CHOICES)
            out[name] = {m for m in _CHOICES if _work(r, m) == best}
        return out

    from .mapcount import WORKLOADS
    names = list(WORKLOADS)

    def judge(answer):
        if not isinstance(answer, dict) or set(answer) != set(names):
            return None, [f"Answer with a dict of every workload: {{{', '.join(repr(n) + ': ...' for n in names)}}}."]
        bad = [m for m in answer.values() if m not in _CHOICES]
        if bad:
            return None, [f"Unknown mode(s) {bad}; modes: {', '.join(_CHOICES)}."]
        w = winners()
        right = [n for n in names if answer[n] in w[n]]
        if len(right) == len(names):
            return True, ["Correct for every workload." + (
                " (Some workloads have a tie; your pick is one of the winners.)" if any(len(v) > 1 for v in w.values())
                else "")]
        return False, [f"{len(right)} of {len(names)} right ({', '.join(right) or 'none'}). For the others: where "
                       "do that workload's costs come from -- updates at fork and exit, or walks at truncation, "
                       "migration and pagemap reads?"]

    return Task(
        "Task 1 (predict): which tracking mode does the least work?",
        "Work = counter updates + rmap walk steps (a mode that cannot answer walks, so it is never wrong). For "
        f"each workload ({', '.join(names)}), which of {', '.join(_CHOICES)} does the least work? Predict before "
        "the results table.",
        't.check({"fork-heavy": "none", ...})', judge,
        ["fork-heavy: 2000 short-lived children each fork and exit. Who pays at every fork and exit, and who "
         "has questions to answer by walking?",
         "long-lived: every child stays, so every walk of the parent's pages visits every child's VMA. "
         "truncate and migrate: most of the file is not mapped -- who can say 'not mapped' without a walk?",
         "Exact pays one update per PTE change and never walks in vain; none pays nothing and walks for every "
         "question; three states pays only at state changes."])


def defend_task(workload="long-lived", results=None):
    """Task: defend a cheaper design against the exact count on
    ``workload``.  Answer ``(mode, ratio)``: the mode you defend and the
    break-even cost of one rmap walk step, in counter updates, above which
    your mode does more work than exact (``float("inf")`` if it never
    does).  The ratio is checked to within 5%."""
    get = (lambda: results) if results is not None else _results

    def judge(answer):
        try:
            mode, ratio = answer
            ratio = float(ratio)
        except (TypeError, ValueError):
            return None, ['Answer with (mode, ratio), e.g. ("three_state", 3.5).']
        if mode not in _CHOICES[1:]:
            return None, [f"Defend one of {', '.join(_CHOICES[1:])} against exact."]
        r = get()[workload]
        d_at = r.costs["exact"].total("atomics") - r.costs[mode].total("atomics")
        d_st = r.costs[mode].total("walk_steps") - r.costs["exact"].total("walk_steps")
        truth = float("inf") if d_st <= 0 else d_at / d_st
        if truth == float("inf"):
            ok = ratio == float("inf")
        else:
            ok = abs(ratio - truth) <= 0.05 * truth
        if ok:
            return True, [f"Correct: {mode} saves {d_at} counter updates on {workload} and costs {d_st} extra walk "
                          f"steps, so it wins while one walk step costs less than {truth:.2f} updates. Is that a "
                          "fair price? An update is one atomic on a shared cache line; a walk step takes a lock "
                          "and reads a VMA -- that is your argument to make."]
        if truth == float("inf"):
            return False, [f"{mode} never walks more than exact here: no break-even exists (answer inf)."]
        return False, ["Not within 5%. Break-even: saved updates / extra walk steps, both against exact, both "
                       "read from the results table."]

    return Task(
        f"Task 2 (defend a design): a cheaper tracker for {workload}",
        "You propose to replace the exact mapcount with a cheaper mode. Choose the mode to defend, and give the "
        f"number your defence rests on: on the {workload} workload, above what cost of one rmap walk step (in "
        "counter updates) does your mode do more work than exact?",
        't.check(("three_state", 3.5))', judge,
        ["Read two rows of the results table for this workload: exact, and your mode.",
         "Your mode saves updates and pays walk steps. Break-even: saved updates = extra steps x step cost.",
         "ratio = (exact updates - your updates) / (your walk steps - exact walk steps)."])


#: the answers CONFIG_NO_PAGE_MAPCOUNT may get wrong (large_task's vocabulary)
LARGE_ANSWERS = ("kpagecount", "exclusive", "pss", "partial")


def _large_wrong(r):
    c = r.costs["mm_id"]
    out = set()
    if c.wrong_kpagecount:
        out.add("kpagecount")
    if c.wrong_exclusive:
        out.add("exclusive")
    if c.pss_error:
        out.add("pss")
    if c.missed_partial:
        out.add("partial")
    return out


def large_task(results=None):
    """Task: for each large-folio workload (:data:`mmkit.labs.large.LARGE_WORKLOADS`),
    predict which answers CONFIG_NO_PAGE_MAPCOUNT gets wrong: a set drawn
    from ``kpagecount`` (/proc/kpagecount), ``exclusive`` (pagemap's
    PM_MMAP_EXCLUSIVE), ``pss`` (smaps PSS) and ``partial`` (the deferred
    split queue's "partially mapped?").  Judged by running the workloads."""
    from .large import LARGE_WORKLOADS, run_large_all
    get = (lambda: results) if results is not None else run_large_all
    names = list(LARGE_WORKLOADS)

    def judge(answer):
        if not isinstance(answer, dict) or set(answer) != set(names):
            return None, [f"Answer with a dict of every workload: {{{', '.join(repr(n) + ': {...}' for n in names)}}}."]
        sets = {}
        for n, v in answer.items():
            v = {v} if isinstance(v, str) else set(v)
            bad = v - set(LARGE_ANSWERS)
            if bad:
                return None, [f"Unknown answer(s) {sorted(bad)}; choose from {', '.join(LARGE_ANSWERS)}."]
            sets[n] = v
        res = get()
        truth = {n: _large_wrong(res[n]) for n in names}
        right = [n for n in names if sets[n] == truth[n]]
        if len(right) == len(names):
            return True, ["Correct for every workload: each wrong answer comes from replacing a page's own "
                          "mapcount by a folio-wide number (an average, or 'maybe mapped shared')."]
        msgs = [f"{len(right)} of {len(names)} workloads right ({', '.join(right) or 'none'})."]
        for n in names:
            if n in right:
                continue
            extra = sorted(sets[n] - truth[n])
            missing = len(truth[n] - sets[n])
            bits = []
            if extra:
                bits.append(f"{', '.join(repr(x) for x in extra)} "
                            f"{'stays' if len(extra) == 1 else 'stay'} right at every read of this workload")
            if missing:
                bits.append("1 answer that comes out wrong at some read is missing" if missing == 1 else
                            f"{missing} answers that come out wrong at some read are missing")
            msgs.append(f"{n}: " + "; ".join(bits) + ". Go through its steps in large.workload_spec(): at each "
                        "read, do all pages of a folio have the same mapcount, and does a second process map "
                        "the folio while some of its pages are mapped by one only?")
        return False, msgs

    return Task(
        "Task 3 (predict): what does CONFIG_NO_PAGE_MAPCOUNT get wrong?",
        "Without per-page mapcounts, /proc/kpagecount and PSS use the folio's average page mapcount, pagemap's "
        "PM_MMAP_EXCLUSIVE uses folio_maybe_mapped_shared(), and a THP counts as partially mapped when its "
        f"average is below 1. For each workload ({', '.join(names)}; its steps: large.workload_spec()), which of "
        f"{', '.join(LARGE_ANSWERS)} come out wrong for at least one page or folio, at any of the workload's "
        "reads of /proc or the deferred split queue? Predict before the large-folio results.",
        't.check({name: {answers...} for each workload}): a dict with one entry per workload, each a set '
        f"drawn from {', '.join(LARGE_ANSWERS)} (set() for none)", judge,
        ["An average is right for every page when every page of the folio has the same mapcount. Which "
         "workloads leave some pages with fewer mappings than others?",
         "folio_maybe_mapped_shared() is per folio: it is wrong for a page only when the folio is mapped by two "
         "processes but that page by one. A COW copy removes one page from one child; an munmap removes half.",
         "The 'average < 1' test for a partially mapped THP misses a folio that other processes map many times "
         "while some of its pages are mapped by nobody (Documentation/mm/transhuge.rst)."])
