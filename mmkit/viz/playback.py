"""A scenario run one step at a time, with a snapshot after every step.

:class:`Playback` is the engine under the stepper widget and the exporters:
``step()`` runs the next step on a model kernel, ``back()`` restores the
snapshot taken before it (no replay from the start), ``goto(i)`` does
either as needed.  For each step it keeps the :class:`~mmkit.scenario.StepResult`
and the trace events the step produced, grouped by user-level operation.

Examples
--------
>>> from mmkit.viz import Playback
>>> pb = Playback("fork", era="6.18")
>>> pb.step().pages["parent"].exclusive
True
>>> pb.step().pages["parent"].exclusive
False
>>> pb.back()
>>> pb.index, pb.kernel.page(pb.ns.p, pb.ns.a).exclusive
(1, True)
"""

from types import SimpleNamespace

from ..era import era as _era
from ..errors import InvalidArgument
from ..kernel import Kernel
from .graph import rmap_graph

__all__ = ["Playback", "resolve_scenario"]


def resolve_scenario(scenario):
    """A Scenario from a Scenario or the name of a shipped one (topic or cow.c case)."""
    if isinstance(scenario, str):
        from ..scenarios import get
        return get(scenario)
    if not hasattr(scenario, "steps") or not hasattr(scenario, "run_step"):
        raise InvalidArgument(f"expected a Scenario or a scenario name, not {type(scenario).__name__}")
    return scenario


class Playback:
    """Step through ``scenario`` on a fresh model kernel.

    Parameters
    ----------
    scenario : Scenario or str
        A scenario, or the name of a shipped one (``mmkit.scenarios.get``).
    era : str or Era, optional
        Kernel era (default: the model's default, 6.18).
    graph_options : dict, optional
        Passed to :func:`~mmkit.viz.rmap_graph` (``group``, ``expand``).

    Attributes
    ----------
    kernel : Kernel
        The live model kernel, in the state after :attr:`index` steps.
    ns : types.SimpleNamespace
        The handles the steps left (``ns.p``, ``ns.a``...).
    results : list of StepResult
        One per step done.
    logs : list
        Per step done, a list of ``(operation, [TraceEvent, ...])``: every
        user-level operation the step made (``"child.write(0x7f..., 8 bytes)"``)
        with the kernel decisions it caused.
    """

    def __init__(self, scenario, era=None, graph_options=None):
        self.scenario = resolve_scenario(scenario)
        self.era = _era(era)
        self.graph_options = dict(graph_options or {})
        self.reset()

    def __len__(self):
        return len(self.scenario.steps)

    def __repr__(self):
        return f"<Playback {self.scenario.name!r} era {self.era.name}: step {self.index}/{len(self)}>"

    @property
    def index(self):
        """Steps done so far (0 .. len)."""
        return len(self.results)

    @property
    def step_name(self):
        """Name of the last step done ('' before the first)."""
        return self.results[-1].step.name if self.results else ""

    # -- moving ------------------------------------------------------------------------
    def reset(self):
        """Back to the empty kernel (a new one; snapshots are dropped)."""
        self.kernel = Kernel(era=self.era)
        self.ns = SimpleNamespace()
        self.results = []
        self.logs = []
        self._saved = [(self.kernel.snapshot(), {})]
        self._graphs = {}

    def step(self):
        """Run the next step; returns its StepResult (None at the end).

        A step that raises something else than a signal or a kernel error
        (a bug in a hand-written scenario) leaves the state as it was before
        the step and the exception propagates.
        """
        i = self.index
        if i >= len(self):
            return None
        k = self.kernel
        mark, op0 = len(k.trace), k.trace.op
        try:
            res = self.scenario.run_step(k, self.ns, i)
        except Exception:
            self._restore(self._saved[-1])
            raise
        events = k.trace[mark:]
        names = k.trace.op_names
        log = [(names.get(op, f"op {op}"), [e for e in events if e.op == op]) for op in range(op0 + 1, k.trace.op + 1)]
        stray = [e for e in events if e.op <= op0]
        if stray:
            log.insert(0, ("", stray))
        self.results.append(res)
        self.logs.append(log)
        self._saved.append((k.snapshot(), dict(vars(self.ns))))
        return res

    def back(self):
        """Undo the last step by restoring the snapshot taken before it."""
        if not self.results:
            return
        self.results.pop()
        self.logs.pop()
        self._saved.pop()
        self._graphs.pop(self.index + 1, None)
        self._restore(self._saved[-1])

    def goto(self, index):
        """Step forward or back until ``index`` steps are done (clamped to 0..len)."""
        if not isinstance(index, int) or isinstance(index, bool):
            raise InvalidArgument(f"step index must be an int, not {index!r}")
        index = max(0, min(index, len(self)))
        while self.index > index:
            self.back()
        while self.index < index:
            self.step()

    def _restore(self, saved):
        snap, ns = saved
        self.kernel.restore(snap)
        self.ns = SimpleNamespace(**ns)

    # -- looking ---------------------------------------------------------------------------
    def names(self, ns=None):
        """``{address: handle name}`` for the integer handles of the namespace."""
        ns = self.ns if ns is None else ns
        items = vars(ns).items() if not isinstance(ns, dict) else ns.items()
        return {v: k for k, v in sorted(items) if isinstance(v, int) and not isinstance(v, bool) and v >= 4096}

    def graph(self, index=None):
        """The rmap graph after ``index`` steps (default: now); cached.

        Only states up to the current index are known (their snapshots)."""
        index = self.index if index is None else index
        if not 0 <= index <= self.index:
            raise InvalidArgument(f"step {index} has not been run (now at {self.index})")
        g = self._graphs.get(index)
        if g is None:
            snap, ns = self._saved[index]
            if index == self.index:
                k = self.kernel
            else:
                k = Kernel(era=self.era)
                k.restore(snap)
            g = self._graphs[index] = rmap_graph(k, names=self.names(ns), **self.graph_options)
        return g

    def set_graph_options(self, **options):
        """Change the graph options (``expand``, ``group``); cached graphs are dropped."""
        self.graph_options.update(options)
        self._graphs.clear()

    def all_graphs(self):
        """The graphs of every state of a complete run (0..len steps), from a
        scratch run of the same scenario and era; a step that fails with a
        Python error ends the list early.  Used to plan a layout."""
        pb = Playback(self.scenario, self.era, self.graph_options)
        graphs = [pb.graph()]
        for _ in range(len(pb)):
            try:
                pb.step()
            except Exception:
                break
            graphs.append(pb.graph())
        return graphs
