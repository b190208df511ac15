"""An attack finder: search short operation sequences for a COW bug.

Given an era and a property, :func:`find_attack` tries every sequence of
operations on one private anonymous page, shortest first, and returns the
shortest ones that break the property, each as a runnable
:class:`mmkit.scenario.Scenario`.  Under 5.7 it rediscovers the vmsplice
leak (CVE-2020-29374), under 5.9 a stale read-only pin, and under 6.18 it
finds nothing within its budget.

How it works
------------
* **Actors.**  The parent ``P`` maps one anonymous page and writes it;
  ``P`` may fork once, giving the child ``C``.
* **Alphabet** (:data:`VERBS`, in search order): fork, vmsplice, munmap,
  exit (child only), R/O pin, R/W pin (both long-term, as io_uring or RDMA
  take them), an mprotect(PROT_READ) / mprotect(PROT_READ|PROT_WRITE) round
  trip, and write.  Each actor has at most one pipe and one pin.
* **Tagging.**  Every write stores a fresh tag naming its writer
  (``b"P:03"``: write number 3, by the parent), so any value read says who
  wrote it.
* **Specification.**  Beside the model kernel the search keeps what a
  correct kernel must show: each process's own copy of the page (a private
  mapping), copied at fork, changed only by its own writes.
* **Properties.**  ``"no_leak"``: no process -- nor its pipe or pin -- ever
  reads a value that was never in its own copy of the page (such a value
  was written by the other process after the fork).  ``"pin_coherent"``: a
  pin always reads exactly what its owner last wrote.
* **Checks.**  After each sequence every live process reads its page,
  drains its pipe and has the device read its pin.  Reads change nothing
  but the pipe (which they drain), so reading only at the end loses no
  attack: a read in the middle would just close the pipe early.
* **Budget.**  Breadth-first: every valid sequence of 1, 2, ...
  ``max_ops`` operations, replayed on a fresh kernel (``trace="off"``,
  ``check=False``: a sequence costs about 0.1 ms).  The search stops at the
  first length that has counterexamples and returns all of them.

Examples
--------
>>> r = find_attack("5.7", "no_leak")
>>> r.first.ops_str()
'fork; C vmsplices; C munmaps; P writes'
>>> r.first.scenario().run(__import__("mmkit").Kernel(era="5.7"))[-1].outcome
False
>>> find_attack("6.18", "no_leak", max_ops=3).found
[]
"""

import time
from dataclasses import dataclass, field
from html import escape

from ..era import era as _era
from ..errors import InvalidArgument
from ..kernel import Kernel
from ..scenario import Scenario
from ..table import Table

__all__ = ["Op", "VERBS", "ALPHABET", "PROPERTIES", "COW_TWINS", "Counterexample", "SearchResult", "find_attack",
           "replay", "run_ops", "across_eras", "search_table", "attack_machine"]

ACTORS = ("C", "P")
#: The operations, in the order the search tries them.
VERBS = ("fork", "vmsplice", "munmap", "exit", "pin_ro", "pin_rw", "mprotect", "write")
#: What each property forbids.
PROPERTIES = {
    "no_leak": "no process (nor its pipe or its pin) reads data written by another process after fork()",
    "pin_coherent": "a pin always reads what its owner last wrote",
}
_DESCR = {
    "fork": "P forks: the child C shares the page",
    "write": "{a} writes {tag}",
    "vmsplice": "{a} vmsplice()s the page into a pipe (FOLL_GET)",
    "munmap": "{a} munmap()s the page",
    "exit": "{a} exits",
    "pin_ro": "{a} takes a long-term R/O pin (FOLL_PIN|FOLL_LONGTERM)",
    "pin_rw": "{a} takes a long-term R/W pin (FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM)",
    "mprotect": "{a}: mprotect(PROT_READ), then mprotect(PROT_READ|PROT_WRITE)",
}
_PAST = {"fork": "fork", "write": "writes", "vmsplice": "vmsplices", "munmap": "munmaps", "exit": "exits",
         "pin_ro": "pins R/O", "pin_rw": "pins R/W", "mprotect": "mprotects R/O, R/W"}
_TAGLEN = 4


@dataclass(frozen=True)
class Op:
    """One operation: a verb from :data:`VERBS` done by actor ``"P"`` or ``"C"``."""

    verb: str
    actor: str = "P"

    def __str__(self):
        return "fork" if self.verb == "fork" else f"{self.actor} {_PAST[self.verb]}"


#: Every operation, in search order: fork first, then each verb by C then P.
ALPHABET = (Op("fork", "P"),) + tuple(Op(v, a) for v in VERBS[1:] for a in ACTORS
                                      if not (v == "exit" and a == "P"))


class _World:
    """The model kernel plus the specification of what it must show."""

    def __init__(self, k):
        self.k = k
        self.proc = {}
        self.alive = {}
        self.mapped = {}
        self.content = {}      # actor -> what its private page must hold
        self.history = {}      # actor -> every value its page has held
        self.pipe = {}         # actor -> Pipe
        self.pin = {}          # actor -> Pin
        self.writes = 0
        self.forked = False
        p = k.spawn("parent")
        self.proc["P"] = p
        self.addr = p.mmap(1)
        self.alive["P"] = self.mapped["P"] = True
        self.history["P"] = set()
        self._write("P")

    def _write(self, a):
        if self.writes > 99:
            raise InvalidArgument("the attack world tags at most 100 writes")
        tag = f"{a}:{self.writes:02d}".encode()
        self.writes += 1
        self.proc[a].write(self.addr, tag)
        self.content[a] = tag
        self.history[a].add(tag)
        return tag

    def allowed(self, op):
        """Is ``op`` possible now?"""
        a, v = op.actor, op.verb
        if v == "fork":
            return not self.forked and self.mapped["P"]
        if not self.alive.get(a):
            return False
        if v == "exit":
            return True
        if not self.mapped[a]:
            return False
        if v == "vmsplice":
            return a not in self.pipe
        if v in ("pin_ro", "pin_rw"):
            return a not in self.pin
        return True

    def apply(self, op):
        """Do ``op`` on the model and on the specification; returns what happened."""
        a, v = op.actor, op.verb
        p = self.proc[a]
        if v == "fork":
            self.proc["C"] = p.fork("child")
            self.forked = True
            self.alive["C"] = self.mapped["C"] = True
            self.content["C"] = self.content["P"]
            self.history["C"] = {self.content["P"]}
            return None
        if v == "write":
            return self._write(a)
        if v == "vmsplice":
            self.pipe[a] = p.vmsplice(self.addr, _TAGLEN)
        elif v == "munmap":
            p.munmap(self.addr, 1)
            self.mapped[a] = False
        elif v == "exit":
            p.exit()
            self.alive[a] = self.mapped[a] = False
        elif v in ("pin_ro", "pin_rw"):
            self.pin[a] = p.pin(self.addr, 1, write=v == "pin_rw", longterm=True)
        elif v == "mprotect":
            p.mprotect(self.addr, 1, "r")
            p.mprotect(self.addr, 1, "rw")
        return None

    def read(self, a, what, prop):
        """Actor ``a`` reads ``what`` ("page", "pipe" or "pin"); returns
        ``(value, violation)`` where violation is None or a sentence."""
        if what == "page":
            value = self.proc[a].read(self.addr, _TAGLEN)
        elif what == "pipe":
            value = self.pipe[a].read(_TAGLEN)
        else:
            value = self.pin[a].read(_TAGLEN)
        return value, self.judge(a, what, value, prop)

    def judge(self, a, what, value, prop):
        """The violation of ``prop`` that reading ``value`` shows, or None."""
        whose = {"page": f"{a}'s page", "pipe": f"{a}'s pipe", "pin": f"{a}'s pin"}[what]
        if prop == "no_leak":
            if value not in self.history[a]:
                return (f"{whose} returned {value!r}, written by {_writer(value)} after the fork: "
                        f"{a} never had that data")
        elif what == "pin" and value != self.content[a]:
            return f"{whose} returned {value!r} but {a} last wrote {self.content[a]!r}: the pin is stale"
        return None

    def copy(self):
        """A copy of the specification sharing the kernel and its handles
        (scenario steps work on copies, so that the stepper's "back", which
        restores the kernel and a shallow copy of the handles, also restores
        the specification)."""
        w = object.__new__(_World)
        w.__dict__.update(self.__dict__)
        for name in ("proc", "alive", "mapped", "content", "pipe", "pin"):
            setattr(w, name, dict(getattr(self, name)))
        w.history = {a: set(h) for a, h in self.history.items()}
        return w

    def readable(self, a):
        """What ``a`` can read now."""
        if not self.alive.get(a):
            return []
        return [w for w, ok in (("page", self.mapped[a]), ("pipe", a in self.pipe and self.pipe[a].active),
                                ("pin", a in self.pin)) if ok]


def _writer(tag):
    return {"P": "the parent", "C": "the child"}.get(tag[:1].decode(errors="replace"), "someone else")


#: Counterexamples that are one of cow.c's own anonymous cases (tools/testing/
#: selftests/mm/cow.c), keyed by their operations.
COW_TWINS = {
    "fork; C vmsplices; C munmaps; P writes": "vmsplice() + unmap in child",
    "fork; C vmsplices; C munmaps; P mprotects R/O, R/W; P writes":
        "vmsplice() + unmap in child with mprotect() optimization",
    "P vmsplices; fork; P munmaps; C writes": "vmsplice() before fork(), unmap in parent after fork()",
    "fork; P vmsplices; P munmaps; C writes": "vmsplice() + unmap in parent after fork()",
    "P pins R/W; P mprotects R/O, R/W; P writes": "R/O-mapping a page registered as iouring fixed buffer",
    "P pins R/W; fork; P writes": "fork() with an iouring fixed buffer",
    "fork; P pins R/O; P writes": "R/O GUP pin on R/O-mapped shared page",
    "fork; C exits; P pins R/O; P writes": "R/O GUP pin on R/O-mapped previously-shared page",
    "P mprotects R/O, R/W; P pins R/O; P writes": "R/O GUP pin on R/O-mapped exclusive page",
}


@dataclass
class Counterexample:
    """A shortest sequence of operations that breaks ``prop`` under ``era``.

    Attributes
    ----------
    ops : tuple of Op
        The operations after the parent has mapped and written its page.
    reader, what : str
        Who reads what to see the violation (``"C"``, ``"pipe"``).
    prop, era : str
    violation : str
        What was read and why it is wrong.
    """

    ops: tuple
    reader: str
    what: str
    prop: str
    era: str
    violation: str

    def ops_str(self):
        """The operations as one line: ``'fork; C vmsplices; C munmaps; P writes'``."""
        return "; ".join(map(str, self.ops))

    @property
    def cow_twin(self):
        """The cow.c case this counterexample is, or None."""
        return COW_TWINS.get(self.ops_str())

    def __str__(self):
        return f"{self.ops_str()}; {self.reader} reads its {self.what} -> {self.violation}"

    __repr__ = __str__

    def scenario(self):
        """This counterexample as a runnable :class:`~mmkit.scenario.Scenario`
        (its last step returns True when the property holds)."""
        return _scenario(self.ops, self.reader, self.what, self.prop,
                         f"attack_{self.era}_{self.prop}", f"{self.prop} under {self.era}: {self.ops_str()}")


@dataclass
class SearchResult:
    """What :func:`find_attack` did.

    Attributes
    ----------
    era, prop : str
    max_ops : int
        The budget: sequences of up to this many operations.
    found : list of Counterexample
        Every counterexample of the shortest length found (empty: none
        within the budget).
    sequences : int
        Sequences tried (each one replayed on a fresh kernel and checked).
    by_length : dict
        length -> sequences tried of that length.
    seconds : float
        Wall-clock time of the search.
    """

    era: str
    prop: str
    max_ops: int
    found: list = field(default_factory=list)
    sequences: int = 0
    by_length: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def first(self):
        """The first counterexample in search order, or None."""
        return self.found[0] if self.found else None

    def __str__(self):
        head = f"era {self.era}, {self.prop}: {self.sequences} sequences of up to {self.max_ops} ops " \
               f"in {self.seconds:.2f} s"
        if not self.found:
            return head + " -> no counterexample within the budget"
        return head + f" -> {len(self.found)} of length {len(self.first.ops)}; first: {self.first}"

    __repr__ = __str__

    def _repr_html_(self):
        head = (f"<p><b>era {escape(self.era)}, {escape(self.prop)}</b>: {self.sequences} sequences of up to "
                f"{self.max_ops} operations tried in {self.seconds:.2f} s; ")
        if not self.found:
            return head + "<b>no counterexample within the budget</b>.</p>"
        rows = "".join(
            f"<tr><td style='text-align:left'>{escape(c.ops_str())}</td><td>{escape(c.reader)} reads its "
            f"{escape(c.what)}</td><td style='text-align:left'>{escape(c.violation)}</td>"
            f"<td style='text-align:left'>{escape(c.cow_twin or '')}</td></tr>" for c in self.found)
        return (head + f"{len(self.found)} counterexample(s) of {len(self.first.ops)} operations:</p>"
                "<table><tr><th>operations (after P maps and writes its page)</th><th>then</th>"
                "<th>what is wrong</th><th>cow.c case</th></tr>" + rows + "</table>")


def replay(ops, era=None, k=None):
    """Run ``ops`` on a fresh fast kernel (or on ``k``); returns the world.

    Raises InvalidArgument if an operation is not possible at its place.
    """
    w = _World(k if k is not None else Kernel(era=era, trace="off", check=False))
    for op in ops:
        if not w.allowed(op):
            raise InvalidArgument(f"operation {op} is not possible after {'; '.join(map(str, ops))}")
        w.apply(op)
    return w


def run_ops(ops, prop, era=None):
    """Replay ``ops`` and read everything; returns the list of
    ``(reader, what, value, violation)`` observed."""
    w = replay(ops, era)
    return [(a, what) + w.read(a, what, prop) for a in ACTORS for what in w.readable(a)]


def find_attack(era, prop="no_leak", max_ops=5):
    """Search the shortest sequences of operations that break ``prop`` under ``era``.

    Parameters
    ----------
    era : str or Era
        A preset (``"5.7"``...) or an Era with flipped rules.
    prop : {"no_leak", "pin_coherent"}
        See :data:`PROPERTIES`.
    max_ops : int
        The budget: every valid sequence of up to ``max_ops`` operations
        (from :data:`ALPHABET`) is tried, shortest first.

    Returns
    -------
    SearchResult
        ``found`` holds every counterexample of the shortest length.

    Raises
    ------
    InvalidArgument
        For an unknown property or era.

    Notes
    -----
    A model error (an :class:`~mmkit.errors.InvariantViolation` or any other
    :class:`~mmkit.errors.MMError` raised while replaying) is not caught:
    the search must not hide a model bug behind "no attack found".
    """
    if prop not in PROPERTIES:
        raise InvalidArgument(f"prop must be one of {', '.join(PROPERTIES)}, not {prop!r}")
    if not isinstance(max_ops, int) or isinstance(max_ops, bool) or max_ops < 1:
        raise InvalidArgument(f"max_ops must be a positive int, not {max_ops!r}")
    e = _era(era)
    res = SearchResult(e.name, prop, max_ops)
    t0 = time.perf_counter()
    # (sequence, the operations possible after it)
    frontier = [((), [op for op in ALPHABET if replay((), e).allowed(op)])]
    for length in range(1, max_ops + 1):
        nxt = []
        for prefix, possible in frontier:
            for op in possible:
                seq = prefix + (op,)
                w = replay(seq, e)
                res.sequences += 1
                res.by_length[length] = res.by_length.get(length, 0) + 1
                after = [o for o in ALPHABET if w.allowed(o)]
                bad = _first_violation(w, prop)
                if bad is None:
                    nxt.append((seq, after))
                else:
                    res.found.append(Counterexample(seq, bad[0], bad[1], prop, e.name, bad[2]))
        if res.found:
            break
        frontier = nxt
    res.seconds = time.perf_counter() - t0
    return res


def across_eras(cx, eras=None):
    """``{era: passes}`` for counterexample ``cx`` replayed under each era
    (default: every preset): where the bug it shows exists, and where not."""
    from ..era import ERAS
    sc = cx.scenario()
    return {_era(e).name: sc.run(Kernel(era=e))[-1].outcome is True for e in (ERAS if eras is None else eras)}


def search_table(results):
    """One row per :class:`SearchResult`: era, property, budget, sequences
    tried, seconds, and the first counterexample found (or none)."""
    return Table(["era", "property", "budget (ops)", "sequences", "seconds", "shortest", "first found"],
                 [[r.era, r.prop, r.max_ops, r.sequences, round(r.seconds, 2),
                   len(r.first.ops) if r.first else "-", r.first.ops_str() if r.first else "nothing"]
                  for r in results])


def _first_violation(w, prop):
    for a in ACTORS:
        for what in w.readable(a):
            _, bad = w.read(a, what, prop)
            if bad:
                return a, what, bad
    return None


# -- scenarios ----------------------------------------------------------------------

def _scenario(ops, reader, what, prop, name, title):
    sc = Scenario(name, title, watch=[("parent", "p", "a"), ("child", "c", "a")])

    def populate(k, s):
        s.w = _World(k)
        s.p, s.a = s.w.proc["P"], s.w.addr
        s.violations = ()
        return s.w.content["P"]

    sc.add("populate", "The parent maps one private anonymous page and writes its tag b'P:00'.", populate)
    for op in ops:
        sc.add(str(op), _DESCR[op.verb].format(a={"P": "The parent", "C": "The child"}[op.actor], tag="a new tag")
               + ".", _op_step(op))

    def read(k, s):
        s.w = s.w.copy()
        value, bad = s.w.read(reader, what, prop)
        if bad:
            s.violations += (bad,)
        return value

    who = {"P": "parent", "C": "child"}[reader]
    sc.add(f"{reader} reads its {what}", f"The {who} reads its {what}"
           + (" (the device reads through the pin)" if what == "pin" else "") + ".", read)
    sc.add("check", f"Pass if {PROPERTIES[prop]}.", lambda k, s: not s.violations)
    return sc


def _op_step(op):
    def step(k, s):
        s.w = s.w.copy()
        out = s.w.apply(op)
        if op.verb == "fork":
            s.c = s.w.proc["C"]
        return out
    return step


# -- Hypothesis --------------------------------------------------------------------

def attack_machine(era, prop="no_leak"):
    """A Hypothesis ``RuleBasedStateMachine`` class over the same alphabet.

    Its one rule draws a possible operation of :data:`ALPHABET`, or an
    actor who reads everything it can and asserts the property.  Run it
    with ``hypothesis.stateful.run_state_machine_as_test``; a failure
    prints a replayable, shrunk sequence of steps.

    Notes
    -----
    Hypothesis samples sequences at random and shrinks failures; the
    breadth-first :func:`find_attack` is exhaustive within its budget and
    deterministic, so it is the one the notebook and the tests rely on.
    """
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, rule

    class AttackMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.w = _World(Kernel(era=era, trace="off", check=True))

        @rule(data=st.data())
        def step(self, data):
            """One operation of the alphabet, or one actor reading everything
            it can (and asserting the property); nothing once nothing is left."""
            w = self.w
            moves = [op for op in ALPHABET if w.allowed(op)] + [a for a in ACTORS if w.readable(a)]
            if not moves:
                return
            move = data.draw(st.sampled_from(moves), label="move")
            if isinstance(move, Op):
                w.apply(move)
                return
            for what in w.readable(move):
                _, bad = w.read(move, what, prop)
                assert bad is None, bad

    AttackMachine.__name__ = f"AttackMachine_{str(era).replace('.', '_')}_{prop}"
    return AttackMachine
