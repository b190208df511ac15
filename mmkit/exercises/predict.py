""""Predict, then step": questions about the topic scenarios the stepper shows.

``predict("fork", after=2, fields=("refcount", "mapcount", "exclusive"),
who="parent")`` asks for the watched page ``"parent"`` after the first two
steps of the ``fork`` scenario; the learner answers, then steps the widget
to see it.
"""

from types import SimpleNamespace

from ..errors import InvalidArgument, MMError
from ..kernel import Kernel
from ..scenarios import get as get_scenario
from .program import show_value
from .question import Part, Question

__all__ = ["predict", "ScenarioSource"]


class ScenarioRun:
    """A scenario run up to some step, with the Run interface the parts use."""

    def __init__(self, scenario, kernel, s, results, error=None):
        self.scenario = scenario
        self.kernel = kernel
        self.s = s
        self.results = results
        self.error = error

    def _where(self, label):
        for w in self.scenario.watch:
            if w[0] == label:
                return w
        raise InvalidArgument(f"scenario {self.scenario.name!r} watches no page called {label!r}; "
                              f"it watches {', '.join(w[0] for w in self.scenario.watch)}")

    def page(self, label, *_):
        return self.results[-1].pages[label] or _absent()

    def folio(self, label, *_):
        w = self._where(label)
        proc, addr = getattr(self.s, w[1], None), getattr(self.s, w[2], None)
        if proc is None or addr is None or not proc.alive:
            return None
        e = proc.mm.pte(addr + (w[3] if len(w) > 3 else 0) * 4096)
        return e.folio if e is not None else None

    def holders(self, folio):
        pins = refs = 0
        for h in self.kernel.holders.values():
            if not h.released:
                for f in h.folios():
                    if f is folio:
                        pins += h.kind == "pin"
                        refs += h.kind != "pin"
        return pins, refs


def _absent():
    from ..pageinfo import PageInfo
    return PageInfo()


class ScenarioSource:
    """The first ``upto`` steps of a scenario, runnable under any era."""

    ops = ()

    def __init__(self, scenario, upto):
        self.scenario = scenario
        self.upto = upto

    def run(self, era, check=True, upto=None):
        k = Kernel(era=era, check=check)
        s = SimpleNamespace()
        results = []
        for i in range(self.upto if upto is None else upto):
            try:
                results.append(self.scenario.run_step(k, s, i))
            except MMError as e:
                if check:
                    raise
                return ScenarioRun(self.scenario, k, s, results, error=e)
        return ScenarioRun(self.scenario, k, s, results)

    def code(self, era=None):
        lines = [f"# scenario {self.scenario.name!r}: {self.scenario.title}"]
        lines += [f"step {i + 1}: {st.name}" for i, st in enumerate(self.scenario.steps[:self.upto])]
        return "\n".join(lines)


def _fault_of(label):
    def fn(run):
        if len(run.results) < 2:
            return "first touch"
        b, a = run.results[-2].pages[label], run.results[-1].pages[label]
        if b is None or not b.present:
            return "first touch"
        if b.writable:
            return "no fault"
        return "reuse" if a is not None and a.pfn == b.pfn else "copy"
    return fn


#: the fields predict() can ask
FIELDS = ("refcount", "mapcount", "pincount", "exclusive", "writable", "present", "fault", "outcome")

DEFAULT_HINTS = (
    "Read the step's name and ask which kernel path it takes: a fault (do_anonymous_page, do_wp_page), "
    "fork (copy_present_ptes), GUP (pin_user_pages), migration or truncation.",
    "refcount counts every holder (1024 per pin), mapcount only page-table entries; PageAnonExclusive is "
    "set for a page one process owns and cleared by fork(). The zero page is not counted: answer \"zero page\".",
    "Take the steps one at a time and write down, after each, who holds the page: page-table entries, pins, "
    "references, pipe buffers, the page cache.",
)


def _outcome_fn(step):
    migrate = step.name.startswith("migrate")

    def fn(run):
        v = run.results[-1].outcome
        if migrate and isinstance(v, int) and not isinstance(v, bool):
            return "migrated" if v else "EAGAIN"
        if migrate and hasattr(v, "migrated"):
            if v.migrated:
                return "migrated"
            return next(iter(v.reasons.values()), "EAGAIN").split(":")[0].strip()
        return show_value(v)
    return fn, migrate


def predict(scenario, after, fields=("refcount", "mapcount", "exclusive"), who=None, era="6.18", hints=None):
    """A question about a topic scenario: the state after some steps.

    Parameters
    ----------
    scenario : str
        A topic scenario name (``mmkit.scenarios.names()``).
    after : int or str
        How many steps have run (1-based, as the stepper counts), or the
        name of the step just run.
    fields : tuple of str
        Counters of the watched page (``refcount``, ``mapcount``,
        ``pincount``, ``exclusive``, ``writable``, ``present``), ``"fault"``
        (what the step's write did: ``"no fault"``, ``"reuse"``, ``"copy"``)
        or ``"outcome"`` (what the step returned: data, a signal...).
    who : str, optional
        The watched page's label (default: the scenario's first).
    era : str
    hints : sequence of 3 str, optional
        This prediction's own three hints (default: general ones about
        kernel paths and counters).

    Raises
    ------
    InvalidArgument
        At once, for an unknown scenario, step, watched page or field (the
        message lists the valid ones), or hints that are not 3 strings.

    Examples
    --------
    >>> q = predict("fork", after="fork", fields=("refcount", "mapcount"), who="parent")
    >>> q.evaluate((2, 2))[0]
    True
    """
    if isinstance(fields, str):
        fields = (fields,)
    bad = [f for f in fields if f not in FIELDS]
    if bad:
        raise InvalidArgument(f"unknown field(s) {', '.join(map(repr, bad))}; predict() asks "
                              f"{', '.join(FIELDS)}")
    if not fields:
        raise InvalidArgument(f"fields is empty; choose from {', '.join(FIELDS)}")
    if hints is not None:
        hints = list(hints)
        if len(hints) != 3 or not all(isinstance(h, str) and h.strip() for h in hints):
            raise InvalidArgument("hints must be three non-empty strings (hint 1, 2, 3)")
    sc = get_scenario(scenario)
    if isinstance(after, str):
        names = [st.name for st in sc.steps]
        if after not in names:
            raise InvalidArgument(f"scenario {scenario!r} has no step {after!r}; steps: {', '.join(names)}")
        upto = names.index(after) + 1
    else:
        upto = int(after)
        if not 1 <= upto <= len(sc.steps):
            raise InvalidArgument(f"after must be between 1 and {len(sc.steps)}")
    who = who or sc.watch[0][0]
    if who not in [w[0] for w in sc.watch]:
        raise InvalidArgument(f"scenario {scenario!r} watches {', '.join(w[0] for w in sc.watch)}, not {who!r}")
    step = sc.steps[upto - 1]
    parts = []
    for f in fields:
        if f == "fault":
            parts.append(Part("fault", "fault", _fault_of(who), key=(who,),
                              prompt=f"what does step {upto} do to the page watched as {who!r}: no fault, reuse or copy?"))
        elif f == "outcome":
            fn, migrate = _outcome_fn(step)
            if migrate:
                parts.append(Part("outcome", "migrated", fn, key=(who,),
                                  prompt=f"what does step {upto} report: migrated, or the errno it fails with?"))
                continue
            parts.append(Part("outcome", "data", fn, key=(who,),
                              prompt=f"what does step {upto} return?",
                              form='what the step returns, as a string: data such as "old data", "zero" for zero '
                                   'bytes, a number such as "1", or a signal name such as "SIGBUS" (any case)',
                              reader="pipe" if "pipe" in step.name else "pin" if "device" in step.name else None))
        else:
            parts.append(Part(f, f, (lambda f: lambda run: _field(run.page(who), f))(f), key=(who,),
                              form='an int, or "zero page" (it is not counted)'
                              if f in ("refcount", "mapcount", "pincount") else None,
                              prompt=f"{f} of the page watched as {who!r} after step {upto} ({step.name!r})"))
    params = {"scenario": scenario, "after": upto, "era": era}
    text = f"Predict, then step: after step {upto} ({step.name!r}), what does the page watched as {who!r} show?"
    return Question(ScenarioSource(sc, upto), parts, params, text, hints or list(DEFAULT_HINTS))


def _field(info, f):
    if f in ("refcount", "mapcount", "pincount") and info.zero_page:
        return "zero page"
    return getattr(info, f)
