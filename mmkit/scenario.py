"""Scenarios: named lists of steps that any kernel (model or live) can run.

A scenario is what a lecture, a widget, a test and the conformance suite
share.  Each step is a small function ``fn(k, s)`` taking a kernel (a
:class:`mmkit.Kernel` or a :class:`mmkit.live.LiveKernel`, same API) and a
namespace ``s`` in which earlier steps left their handles (``s.p``, ``s.a``,
``s.pin``...).  What a step returns is recorded as its *outcome*; a signal
or a failed system call is an outcome too, not an error.

Writing your own takes three lines::

    >>> from mmkit import Kernel
    >>> from mmkit.scenario import Scenario
    >>> def setup(k, s):
    ...     s.p = k.spawn("parent"); s.a = s.p.mmap(1); s.p.write(s.a, b"x")
    >>> sc = Scenario("mine", "fork then write", watch=[("parent", "p", "a")])
    >>> sc.add("map", "Map one page and write it.", setup).add(
    ...     "fork", "The child shares the page.", lambda k, s: setattr(s, "c", s.p.fork("child")))
    <Scenario 'mine': 2 steps>
    >>> [r.pages["parent"].mapcount for r in sc.run(Kernel())]
    [1, 2]
"""

from dataclasses import dataclass, field
from types import SimpleNamespace

from .errors import KernelError, Signal

__all__ = ["Step", "Scenario", "StepResult", "outcome_of", "format_outcome"]


@dataclass(frozen=True)
class Step:
    """One step: a name, a one-sentence explanation, and ``fn(k, s)``."""

    name: str
    explain: str
    fn: object


@dataclass
class StepResult:
    """What one step did: its outcome and the watched pages afterwards."""

    index: int
    step: Step
    outcome: object
    pages: dict = field(default_factory=dict)


def outcome_of(fn, *args):
    """Call ``fn(*args)``; return its value, or the signal / errno it raised.

    Signals become the strings ``"SIGSEGV"`` / ``"SIGBUS"`` and failed system
    calls their errno name (``"EFAULT"``), so that the model and the live
    kernel can be compared value by value.
    """
    try:
        return fn(*args)
    except Signal as e:
        return e.signal
    except KernelError as e:
        return e.errno


def format_outcome(outcome):
    """How an outcome reads in tables, traces and captions: bytes as a
    literal (``b'old data'``), nothing as ``-``, anything else as str()."""
    if outcome is None:
        return "-"
    if isinstance(outcome, (bytes, bytearray)):
        return repr(bytes(outcome))
    return str(outcome)


class Scenario:
    """A named list of steps plus the pages to watch after each step.

    Parameters
    ----------
    name : str
        Short identifier (``"cow_child_writes"``).
    title : str
        One line for humans.
    watch : list of (label, process_attr, addr_attr) or (label, process_attr, addr_attr, page)
        After every step, ``k.page(getattr(s, process_attr), getattr(s, addr_attr) + page*PAGE_SIZE)``
        is recorded under ``label`` (``None`` while the handles do not exist
        yet or the process has exited).
    """

    def __init__(self, name, title="", steps=(), watch=()):
        self.name = name
        self.title = title
        self.steps = list(steps)
        self.watch = [tuple(w) for w in watch]

    def add(self, name, explain, fn):
        """Append a step; returns the scenario so calls can be chained."""
        self.steps.append(Step(name, explain, fn))
        return self

    def step(self, name, explain=""):
        """Decorator form of :meth:`add`."""
        def deco(fn):
            self.add(name, explain or (fn.__doc__ or "").strip(), fn)
            return fn
        return deco

    def __len__(self):
        return len(self.steps)

    def __repr__(self):
        return f"<Scenario {self.name!r}: {len(self.steps)} steps>"

    def targets(self, k, s):
        """{label: (process, address)} of the watched pages, or None where
        the handles do not exist yet or the process has exited."""
        out = {}
        for w in self.watch:
            label, pattr, aattr = w[:3]
            page = w[3] if len(w) > 3 else 0
            proc, addr = getattr(s, pattr, None), getattr(s, aattr, None)
            out[label] = None if proc is None or addr is None or not proc.alive else \
                (proc, addr + page * k.PAGE_SIZE)
        return out

    def observe(self, k, s):
        """Read the watched pages from kernel ``k`` with handles ``s``."""
        return {label: None if t is None else k.page(*t) for label, t in self.targets(k, s).items()}

    def run_step(self, k, s, index):
        """Run step ``index`` on ``k`` and return its :class:`StepResult`."""
        st = self.steps[index]
        out = outcome_of(st.fn, k, s)
        return StepResult(index, st, out, self.observe(k, s))

    def run(self, k, upto=None):
        """Run the steps (all, or the first ``upto``) on ``k``; return the results."""
        s = SimpleNamespace()
        n = len(self.steps) if upto is None else upto
        return [self.run_step(k, s, i) for i in range(n)]
