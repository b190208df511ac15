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
* **Alphabet** (:data:`VERBS`): fork, write, vmsplice, munmap, exit (child
  only), R/O pin, R/W pin (both long-term, as io_uring or RDMA take them),
  and an mprotect(PROT_READ) / mprotect(PROT_READ|PROT_WRITE) round trip.
  Each actor has at most one pipe and one pin.
* **Tagging.**  Every write stores a fresh tag naming its writer
  (``b"P:03"``: the parent's third write), so any value read says who
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
from types import SimpleNamespace

from ..era import era as _era
from ..errors import InvalidArgument
from ..kernel import Kernel
from ..scenario import Scenario

__all__ = ["Op", "VERBS", "ALPHABET", "PROPERTIES", "Counterexample", "SearchResult", "find_attack",
           "replay", "run_ops", "attack_machine"]

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

    def readable(self, a):
        """What ``a`` can read now."""
        if not self.alive.get(a):
            return []
        return [w for w, ok in (("page", self.mapped[a]), ("pipe", a in self.pipe and self.pipe[a].active),
                                ("pin", a in self.pin)) if ok]


def _writer(tag):
    return {"P": "the parent", "C": "the child"}.get(tag[:1].decode(errors="replace"), "someone else")


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

    def __str__(self):
        return f"{self.ops_str()}; {self.reader} reads its {self.what} -> {self.violation}"

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
    e = _era(era)
    res = SearchResult(e.name, prop, max_ops)
    t0 = time.perf_counter()
    frontier = [()]
    for length in range(1, max_ops + 1):
        nxt = []
        for prefix in frontier:
            w = replay(prefix, e)
            for op in ALPHABET:
                if not w.allowed(op):
                    continue
                seq = prefix + (op,)
                w2 = replay(seq, e)
                res.sequences += 1
                res.by_length[length] = res.by_length.get(length, 0) + 1
                bad = _first_violation(w2, prop)
                if bad is None:
                    nxt.append(seq)
                else:
                    res.found.append(Counterexample(seq, bad[0], bad[1], prop, e.name, bad[2]))
        if res.found:
            break
        frontier = nxt
    res.seconds = time.perf_counter() - t0
    return res


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
        s.violations = []
        return s.w.content["P"]

    sc.add("populate", "The parent maps one private anonymous page and writes its tag b'P:00'.", populate)
    for op in ops:
        sc.add(str(op), _DESCR[op.verb].format(a={"P": "The parent", "C": "The child"}[op.actor], tag="a new tag")
               + ".", _op_step(op))

    def read(k, s):
        value, bad = s.w.read(reader, what, prop)
        if bad:
            s.violations.append(bad)
        return value

    who = {"P": "parent", "C": "child"}[reader]
    sc.add(f"{reader} reads its {what}", f"The {who} reads its {what}"
           + (" (the device reads through the pin)" if what == "pin" else "") + ".", read)
    sc.add("check", f"Pass if {PROPERTIES[prop]}.", lambda k, s: not s.violations)
    return sc


def _op_step(op):
    def step(k, s):
        out = s.w.apply(op)
        if op.verb == "fork":
            s.c = s.w.proc["C"]
        return out
    return step


# -- Hypothesis --------------------------------------------------------------------

def attack_machine(era, prop="no_leak"):
    """A Hypothesis ``RuleBasedStateMachine`` class over the same alphabet.

    Its rules are the operations of :data:`ALPHABET` (with their
    preconditions) plus a ``read`` rule for each actor, which asserts the
    property.  Run it with ``hypothesis.stateful.run_state_machine_as_test``;
    a failure prints a replayable, shrunk sequence of steps.

    Notes
    -----
    Hypothesis samples sequences at random and shrinks failures; the
    breadth-first :func:`find_attack` is exhaustive within its budget and
    deterministic, so it is the one the notebook and the tests rely on.
    """
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

    class AttackMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.w = _World(Kernel(era=era, trace="off", check=True))

        @precondition(lambda self: any(self.w.allowed(op) for op in ALPHABET))
        @rule(data=st.data())
        def do(self, data):
            op = data.draw(st.sampled_from([op for op in ALPHABET if self.w.allowed(op)]), label="op")
            self.w.apply(op)

        @precondition(lambda self: not any(self.w.allowed(op) for op in ALPHABET))
        @rule()
        def idle(self):
            """Nothing is left to do (the parent unmapped before forking)."""

        @precondition(lambda self: any(self.w.readable(a) for a in ACTORS))
        @rule(a=st.sampled_from(ACTORS))
        def read(self, a):
            for what in self.w.readable(a):
                _, bad = self.w.read(a, what, prop)
                assert bad is None, bad

    AttackMachine.__name__ = f"AttackMachine_{str(era).replace('.', '_')}_{prop}"
    return AttackMachine
