"""The history lab: the kernel's own COW selftest under every era, and why.

:func:`cow_table` runs the anonymous base-page cases of
tools/testing/selftests/mm/cow.c (:data:`mmkit.scenarios.COW_CASES`) under
each era preset and returns an :class:`EraTable` of pass / fail, computed
live by the model.  :func:`why` says which kernel decisions made a cell
pass or fail, :func:`walkthrough` shows every step of it, and
:func:`open_cell` opens it in the stepper (or, where the stepper widget is
not available, in a static walkthrough).  :func:`explorer` is the widget
that does this for any cell; :func:`dirty_cow_probe` shows what the model
does with the pieces of Dirty COW it has.

Examples
--------
>>> t = cow_table(eras=["5.7", "6.18"])
>>> t.passed["vmsplice() + unmap in child"]
{'5.7': False, '6.18': True}
>>> [d for d in why("vmsplice() + unmap in child", "5.7") if "reuse_swap_page" in d]
['parent writes -- reuse_swap_page: mapcount 1 (refcount 2 not consulted) -> reuse']
"""

from dataclasses import dataclass, field
from html import escape
from importlib import import_module
from types import SimpleNamespace

from ..era import ERAS, era as _era
from ..kernel import Kernel
from ..scenario import Scenario, outcome_of
from ..scenarios import COW_CASES, get, run_case
from ..table import Table, Tables

__all__ = ["EraTable", "cow_table", "find_case", "why", "Walkthrough", "walkthrough", "open_cell", "compare",
           "stepper_available", "explorer", "era_rules", "dirty_cow_probe", "KEY_FUNCTIONS"]

#: The kernel functions whose decisions make a cow.c case pass or fail.
KEY_FUNCTIONS = ("reuse_swap_page", "wp_can_reuse_anon_folio", "do_wp_page", "wp_page_copy",
                 "copy_present_ptes", "copy_present_page", "should_force_cow_break", "follow_page_pte",
                 "gup_fast", "change_protection")


def find_case(name):
    """The scenario ``name``: a cow.c case (anon or non-anon), a topic
    scenario, or a Scenario itself.

    Raises
    ------
    InvalidArgument
        For an unknown name.
    """
    return name if isinstance(name, Scenario) else get(name)


@dataclass
class EraTable:
    """cow.c cases x eras: True where the case passes.

    Attributes
    ----------
    eras : list of str
    cases : list of str
    passed : dict
        case -> {era: bool}.
    """

    eras: list
    cases: list
    passed: dict = field(default_factory=dict)

    def fails(self, era):
        """The cases that fail under ``era``."""
        return [c for c in self.cases if not self.passed[c][era]]

    def changes(self):
        """``(case, from_era, to_era, "fixed" | "broken")`` for every cell
        that differs from the one on its left."""
        out = []
        for c in self.cases:
            row = self.passed[c]
            for a, b in zip(self.eras, self.eras[1:]):
                if row[a] != row[b]:
                    out.append((c, a, b, "fixed" if row[b] else "broken"))
        return out

    def grid(self):
        """The table as text lines, ``P`` for pass and ``F`` for fail."""
        w = max(len(c) for c in self.cases)
        lines = [" " * w + "  " + " ".join(f"{e:>4}" for e in self.eras)]
        for c in self.cases:
            lines.append(f"{c:<{w}}  " + " ".join(f"{'P' if self.passed[c][e] else 'F':>4}" for e in self.eras))
        return lines

    def __str__(self):
        return "\n".join(self.grid())

    __repr__ = __str__

    def _repr_html_(self):
        head = "".join(f"<th style='padding:2px 8px'>{escape(e)}</th>" for e in self.eras)
        rows = []
        for c in self.cases:
            cells = "".join(
                f"<td style='text-align:center;padding:2px 8px;background:{'#c4e8dc' if ok else '#f6c6b0'}'"
                f" title='{escape(c)} under {escape(e)}: {'pass' if ok else 'FAIL'}'>"
                f"{'pass' if ok else '<b>FAIL</b>'}</td>"
                for e in self.eras for ok in [self.passed[c][e]])
            rows.append(f"<tr><td style='text-align:left;padding:2px 8px'>{escape(c)}</td>{cells}</tr>")
        return (f"<table class='mm-era-table'><tr><th style='text-align:left'>cow.c case</th>{head}</tr>"
                + "".join(rows) + "</table>")


def cow_table(eras=None, cases=None):
    """Run every cow.c case under every era on fresh model kernels.

    Parameters
    ----------
    eras : list, optional
        Preset names or Eras (default: every preset, oldest first).
    cases : list of Scenario, optional
        Default: the anonymous base-page cases (``COW_CASES``);
        ``NON_ANON_CASES`` gives cow.c's zero-page / memfd / tmpfile cases.

    Returns
    -------
    EraTable
    """
    eras = [_era(e) for e in (ERAS if eras is None else eras)]
    cases = COW_CASES if cases is None else cases
    t = EraTable([e.name for e in eras], [c.name for c in cases])
    for c in cases:
        t.passed[c.name] = {e.name: run_case(c, e) for e in eras}
    return t


@dataclass
class StepView:
    """One step of a walkthrough: what ran, what it returned, the watched
    pages afterwards, and every kernel decision it caused."""

    name: str
    explain: str
    outcome: object
    pages: dict
    events: list    # of mmkit.trace.TraceEvent


@dataclass
class Walkthrough:
    """A scenario run step by step under one era, with its trace: the static
    form of the stepper (for printed and published notebooks)."""

    scenario: str
    era: str
    steps: list

    @property
    def passed(self):
        """The last step's outcome is True (cow.c: the test passes)."""
        return self.steps[-1].outcome is True

    def __str__(self):
        out = [f"{self.scenario} under {self.era}: {'pass' if self.passed else 'FAIL'}"]
        for i, st in enumerate(self.steps):
            out.append(f"{i}. {st.name}: {st.explain}" + ("" if st.outcome is None else f"  => {st.outcome!r}"))
            for label, p in st.pages.items():
                out.append(f"     {label}: {_page(p)}")
            for ev in st.events:
                out.append(f"     | {ev}")
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self):
        rows = []
        labels = list(self.steps[0].pages) if self.steps else []
        for i, st in enumerate(self.steps):
            pages = "".join(f"<td style='font-family:monospace;font-size:85%'>{escape(_page(st.pages[l]))}</td>"
                            for l in labels)
            evs = "<br>".join(escape(str(e)) for e in st.events)
            out = "" if st.outcome is None else f"<br><b>=&gt; {escape(repr(st.outcome))}</b>"
            rows.append(f"<tr><td>{i}</td><td style='text-align:left'><b>{escape(st.name)}</b><br>"
                        f"{escape(st.explain)}{out}</td>{pages}"
                        f"<td style='text-align:left;font-size:80%'>{evs}</td></tr>")
        head = "".join(f"<th>{escape(l)}</th>" for l in labels)
        verdict = "pass" if self.passed else "<b style='color:#D55E00'>FAIL</b>"
        return (f"<div class='mm-walkthrough'><p><b>{escape(self.scenario)}</b> under {escape(self.era)}: "
                f"{verdict}</p><table><tr><th>#</th><th>step</th>{head}<th>kernel decisions</th></tr>"
                + "".join(rows) + "</table></div>")


def _page(p):
    if p is None:
        return "-"
    if not p.present:
        return "not mapped"
    flags = "W" if p.writable else "R/O"
    if p.exclusive:
        flags += " AE"
    return f"pfn {p.pfn} ref {p.refcount} map {p.mapcount} {flags}"


def walkthrough(case, era):
    """Run ``case`` (a cow.c case name or any Scenario) under ``era`` with
    tracing on; returns a :class:`Walkthrough`."""
    sc = find_case(case)
    e = _era(era)
    k = Kernel(era=e)
    s = SimpleNamespace()
    steps = []
    for i, st in enumerate(sc.steps):
        mark = len(k.trace)
        out = outcome_of(st.fn, k, s)
        steps.append(StepView(st.name, st.explain, out, sc.observe(k, s), k.trace[mark:]))
    return Walkthrough(sc.name, e.name, steps)


def why(case, era):
    """The kernel decisions that decide ``case`` under ``era`` (those of
    :data:`KEY_FUNCTIONS`), one line each:
    ``'parent writes -- reuse_swap_page: ... -> reuse'``."""
    return [f"{st.name} -- {ev}" for st in walkthrough(case, era).steps for ev in st.events
            if ev.func in KEY_FUNCTIONS]


def stepper_available():
    """Is the stepper widget (mmkit.widgets.Stepper) installed?"""
    try:
        import_module("mmkit.widgets")
    except ImportError:
        return False
    return True


def open_cell(case, era, at="end"):
    """Open one table cell -- ``case`` under ``era`` -- in the stepper.

    Parameters
    ----------
    case : str or Scenario
        A cow.c case name, or any scenario (an attack's counterexample).
    era : str or Era
    at : "end" or int
        Steps to run before showing it: by default the whole case, so the
        verdict shows; press "reset" to watch it from the start.

    Returns
    -------
    mmkit.widgets.Stepper, or the static :class:`Walkthrough` of the same
    run when the stepper widget is not available.
    """
    sc = find_case(case)
    if not stepper_available():
        return walkthrough(sc, era)
    from ..widgets import Stepper
    st = Stepper(sc, era=_era(era))
    st.goto(len(sc) if at == "end" else at)
    return st


def compare(case, eras=("5.9", "5.19"), at="end"):
    """``case`` under two (or more) eras side by side, with one set of
    controls (``mmkit.widgets.Compare``), run to its end by default.

    Without the stepper widget: the static walkthroughs, one after the other.
    """
    sc = find_case(case)
    if not stepper_available():
        return Tables(walkthrough(sc, e) for e in eras)
    from ..widgets import Compare
    cmp = Compare(sc, eras=tuple(eras))
    cmp.goto(len(sc) if at == "end" else at)
    return cmp


def explorer(table=None, case=None, era="5.7"):
    """A widget: pick a cow.c case and an era, see why it passes or fails.

    Shows the verdict, the decisive kernel decisions, and the run in the
    stepper (or its static walkthrough).  ``.status`` (a Label with CSS
    class ``mm-status``) names the cell shown, for tests.
    """
    import ipywidgets as w
    table = table or cow_table()
    case_dd = w.Dropdown(options=table.cases, value=case or table.cases[2], description="case",
                         layout=w.Layout(width="34em"))
    era_tb = w.ToggleButtons(options=table.eras, value=era, description="era",
                             style={"button_width": "4em"})
    verdict = w.HTML()
    cell = w.Box()
    status = w.Label().add_class("mm-status")

    def show(change=None):
        c, e = case_dd.value, era_tb.value
        ok = table.passed[c][e]
        lines = "".join(f"<li><code>{escape(x)}</code></li>" for x in why(c, e))
        word = "passes" if ok else "<b style='color:#D55E00'>FAILS</b>"
        verdict.value = f"<b>{escape(c)}</b> under <b>{escape(e)}</b>: {word}<ul>{lines}</ul>"
        view = open_cell(c, e)
        cell.children = [view if stepper_available() else w.HTML(view._repr_html_())]
        status.value = f"{c} under {e}: {'pass' if ok else 'fail'}"

    case_dd.observe(show, names="value")
    era_tb.observe(show, names="value")
    show()
    box = w.VBox([case_dd, era_tb, verdict, cell, status])
    box.status = status
    box.case, box.era, box.cell = case_dd, era_tb, cell
    return box


def era_rules(eras=None):
    """The rules of each era: one row per rule, one column per era."""
    eras = [_era(e) for e in (ERAS if eras is None else eras)]
    return Table(["rule"] + [e.name for e in eras],
                 [[r] + [str(e.rules()[r]) for e in eras] for r in eras[0].rules()])


def dirty_cow_probe(era="6.18"):
    """Try the pieces of Dirty COW (CVE-2016-5195) that the model has.

    A process maps a read-only file privately (as /etc/passwd opened
    O_RDONLY), then: a store to it; a write GUP of it (what a
    /proc/self/mem write does, but without FOLL_FORCE, which the model
    lacks); MADV_DONTNEED on it; and finally reads the file back.

    Returns
    -------
    Table
        Rows of (what was tried, what happened), in words: the bytes read,
        the signal or errno with its reason, or "succeeds" for a call that
        returns 0 (MADV_DONTNEED).
    """
    k = Kernel(era=era)
    f = k.open("passwd", 1)
    f.write(0, b"root:x:0:0")
    p = k.spawn("attacker")
    m = p.mmap(1, prot="r", file=f)

    def said(v, why="", expect=None):
        """The outcome in words; ``why`` is added only for the ``expect``-ed outcome."""
        why = f": {why}" if why and v == expect else ""
        if isinstance(v, (bytes, bytearray)):
            return f"reads {bytes(v).decode('ascii', 'replace')!r}"
        if v is None:
            return "succeeds (returns 0)" + why
        return f"{v}" + why

    return Table(["tried", "what happened"], [
        ("read the private read-only mapping", said(outcome_of(p.read, m, 10))),
        ("store to it", said(outcome_of(p.write, m, b"root::0:0:"), "the VMA has no VM_WRITE", "SIGSEGV")),
        ("write GUP of it (FOLL_WRITE, no FOLL_FORCE)", said(outcome_of(p.get_user_pages, m, 1, True),
                                                             "check_vma_flags() refuses a write without VM_WRITE",
                                                             "EFAULT")),
        ("MADV_DONTNEED on it", said(outcome_of(p.madvise, m, 1, "dontneed"),
                                     "the PTE is zapped; the next read maps the file's page again", None)),
        ("the file's contents afterwards", said(f.read(0, 10))),
    ])
