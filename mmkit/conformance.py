"""Conformance: every scenario on the model and on the running kernel, step by step.

``python -m mmkit.conformance`` runs each scenario of :mod:`mmkit.scenarios`
on ``mmkit.Kernel(era="6.18")`` and on :class:`mmkit.live.LiveKernel`, and
prints a side-by-side table per scenario.  Any disagreement is a failure
naming the scenario, the step, the watched page and the field.

What is compared
----------------
outcome
    What each step returned (bytes, True/False, counts) or raised
    (``"SIGSEGV"``, ``"SIGBUS"``, an errno name).  Handles (pins, pipes,
    processes) compare by kind.
present, anon, zero_page, in_page_cache, mapcount, exclusive
    Directly (``exclusive`` only on anon pages).
page identity
    PFNs differ between the two kernels, so their *relations* are compared:
    is a watched page the same physical page as at the previous step, and as
    each other watched page at this step?  The tables show identity letters
    (``A``, ``B``...; ``Z`` is the zero page); a letter is retired once its
    page leaves every watched PTE, because the live kernel recycles freed
    PFNs at once.
writable
    The live kernel shows a PTE's write bit only indirectly (see
    :mod:`mmkit.live.kernel`).  When ``page()`` says ``None``, a store
    tells it (0 faults: writable): the first later store by that process to
    that page in the same run, provided nothing that can write-protect a PTE
    ran in between (marked ``*``); or, since a store changes the page, a
    store at the end of a *replay* of the scenario up to that step on a
    fresh live kernel (marked ``+``; used only if the replay shows the page
    in the same state).  Cells still unknown are ``?`` and not compared.

Not compared: refcount, pincount and maybe_pinned (not exported to user
space; shown for the model only).

Exceptions
----------
* Steps whose live result is not deterministic are listed in :data:`RACY`
  with the reason: their outcome is shown but not compared, and page
  identity across that step is not compared either (compaction may or may
  not move a page).  What stays deterministic is still compared (a pinned
  page never moves; mapcount, exclusivity and sharing survive migration).
* A scenario that needs something user space cannot do on the live kernel
  (a long-term read-only pin: ``ENOSYS``) is reported as *unsupported
  live* from that step on, not as a failure.
* A fault count is 1 instead of 0 about once in a thousand runs on a
  shared VM (live-kernel.md, scenario 4): a failing live run is repeated
  ``retries`` times and only a disagreement that persists is a failure.
"""

import argparse
import sys
from dataclasses import dataclass, field

from .errors import KernelError, Signal
from .notation import key_for
from .scenario import format_outcome

__all__ = ["RACY", "Cell", "Row", "Comparison", "Report", "run_scenario", "compare", "run_conformance",
           "default_scenarios", "main"]

#: (scenario name, step name) -> why the live result of that step is not deterministic
RACY = {
    ("migration", "migrate a"): "compaction decides whether an unpinned page moves (live-kernel.md, scenario 5)",
    ("migration", "migrate b again"): "compaction decides whether an unpinned page moves (live-kernel.md, scenario 5)",
}

_FIELDS = ("present", "anon", "zero_page", "in_page_cache", "mapcount", "exclusive", "writable")

#: The key printed under every comparison table.
KEY = (key_for(["m", "AE", "W", "RO", "r", "zero page"]) + "; A, B...: which page (Z: the zero page); "
       "*: writable inferred from a later store of this run, +: from a replay; ?: unknown; "
       "r: model only (user space cannot read it)")


@dataclass
class Cell:
    """One watched page after one step, on one kernel."""

    present: bool = False
    pfn: object = None
    anon: bool = False
    zero_page: bool = False
    in_page_cache: bool = False
    mapcount: int = 0
    exclusive: bool = False
    writable: object = None
    inferred: str = ""              # "*": from a later store of this run; "+": from a replay
    refcount: object = None
    pincount: object = None
    label: str = "-"

    def text(self, model=False):
        """Compact form in the kit's notation (:mod:`mmkit.notation`):
        ``A m2 AE W`` (identity, mapcount, PageAnonExclusive when set,
        writable or ``RO``), ``+ r2`` on the model side; the zero page is
        not counted: ``Z zero page RO``."""
        if not self.present:
            return "-"
        w = "?" if self.writable is None else ("W" if self.writable else "RO")
        w += self.inferred
        if self.zero_page:
            return f"{self.label} zero page {w}"
        s = f"{self.label} m{self.mapcount}{' AE' if self.exclusive else ''} {w}"
        if model and self.refcount is not None:
            s += f" r{self.refcount}"
        return s


@dataclass
class Row:
    """One step: its outcome and the watched cells, on one kernel."""

    step: str
    outcome: object
    cells: dict
    epoch: object = None
    log_len: int = 0


@dataclass
class Comparison:
    """One scenario compared.

    Attributes
    ----------
    failures : list of str
        ``"step 3 'child writes' parent.mapcount: model 1, live 2"``...
    unsupported : str or None
        Why the live kernel could not run the scenario past some step.
    """

    name: str
    title: str
    watch: list
    model: list
    live: list
    failures: list = field(default_factory=list)
    unsupported: object = None
    racy: dict = field(default_factory=dict)
    attempts: int = 1

    def writable_counts(self):
        """(observed, inferred, unknown) live ``writable`` cells of present pages."""
        cells = [c for r in self.live for c in r.cells.values() if c.present]
        inferred = sum(bool(c.inferred) for c in cells)
        unknown = sum(c.writable is None for c in cells)
        return len(cells) - inferred - unknown, inferred, unknown

    @property
    def ok(self):
        return not self.failures

    def table(self):
        """The side-by-side table (text)."""
        names = [w[0] for w in self.watch]
        head = ["step", "outcome model | live"] + [f"{n}: model | live" for n in names]
        rows = []
        for i, (m, lv) in enumerate(zip(self.model, self.live)):
            cols = [f"{i + 1} {m.step}", f"{format_outcome(m.outcome)} | {format_outcome(lv.outcome)}"]
            cols += [f"{m.cells[n].text(model=True)} | {lv.cells[n].text()}" for n in names]
            prefix = f"step {i + 1} {m.step!r} "
            mark = [f[len(prefix):] for f in self.failures if f.startswith(prefix)]
            note = ""
            if self.unsupported and i == len(self.live) - 1:
                note = "  (ENOSYS live: not compared)"
            elif mark:
                note = "  <-- " + "; ".join(mark)
            elif (self.name, m.step) in self.racy:
                note = "  (racy live: not compared)"
            rows.append(cols + [note])
        widths = [max(len(r[j]) for r in rows + [head + [""]]) for j in range(len(head))]
        out = [f"{self.name} -- {self.title}"]
        if self.unsupported:
            out.append(f"  unsupported live from here on: {self.unsupported}")
        out.append("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths)))
        for r in rows:
            out.append("  " + "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + r[-1])
        if self.attempts > 1:
            out.append(f"  (live run repeated: {self.attempts} attempts)")
        out.append("  " + ("OK" if self.ok else f"FAILED: {len(self.failures)} disagreement(s)"))
        out.append("  " + KEY)
        return "\n".join(out)


@dataclass
class Report:
    """All comparisons of one conformance run."""

    comparisons: list

    @property
    def failures(self):
        return [f"{c.name}: {f}" for c in self.comparisons for f in c.failures]

    @property
    def ok(self):
        return not self.failures

    def format(self, tables=True):
        """Tables (optional) and a summary."""
        parts = [c.table() for c in self.comparisons] if tables else []
        n_ok = sum(c.ok and not c.unsupported for c in self.comparisons)
        uns = [c for c in self.comparisons if c.unsupported and c.ok]
        bad = [c for c in self.comparisons if not c.ok]
        wc = [c.writable_counts() for c in self.comparisons]
        summary = [f"conformance: {len(self.comparisons)} scenario(s): {n_ok} agree, "
                   f"{len(uns)} partly unsupported live, {len(bad)} disagree",
                   f"  live 'writable' cells: {sum(w[0] for w in wc)} read from /proc or a store of ours, "
                   f"{sum(w[1] for w in wc)} told by a store (* later in the run, + in a replay), "
                   f"{sum(w[2] for w in wc)} unknown (?, not compared)"]
        summary += [f"  unsupported live: {c.name}: {c.unsupported}" for c in uns]
        summary += [f"  FAIL {f}" for f in self.failures]
        return "\n\n".join(parts + ["\n".join(summary)])


def _norm(o):
    """An outcome made comparable across kernels."""
    if o is None or isinstance(o, (bool, int, float, str, bytes)):
        return o
    if isinstance(o, (list, tuple)):
        return tuple(_norm(x) for x in o)
    kind = getattr(o, "kind", None)
    name = type(o).__name__
    if name.startswith("Live"):
        name = name[4:]
    return f"<{kind or name.lower()}>"


def run_scenario(sc, k, upto=None, probe=False):
    """Run ``sc`` (its first ``upto`` steps) on kernel ``k``; return its rows
    and where it stopped.

    ``probe=True`` (live kernels only) ends the run by storing to every
    watched page whose writability is still unknown
    (:meth:`~mmkit.live.LiveProcess.store_faults`): harmless once the last
    observation is taken, and it tells the last row's ``writable``.

    Returns
    -------
    (rows, unsupported)
        ``unsupported`` is the message of the first ``ENOSYS`` a step got
        (the live kernel cannot do it), after which the run stops.
    """
    from types import SimpleNamespace
    s = SimpleNamespace()
    rows = []
    unsupported = None
    log = getattr(k, "access_log", None)
    steps = sc.steps if upto is None else sc.steps[:upto]
    for i, st in enumerate(steps):
        try:
            out = st.fn(k, s)
        except Signal as e:
            out = e.signal
        except KernelError as e:
            out = e.errno
            if e.errno == "ENOSYS":
                unsupported = f"step {i + 1} {st.name!r}: {e}"
        cells = {}
        for label, t in sc.targets(k, s).items():
            if t is None:
                cells[label] = Cell()
                continue
            info = k.page(*t)
            c = cells[label] = Cell(present=info.present, pfn=info.pfn, anon=info.anon, zero_page=info.zero_page,
                                   in_page_cache=info.in_page_cache, mapcount=info.mapcount,
                                   exclusive=info.exclusive, writable=info.writable, refcount=info.refcount,
                                   pincount=info.pincount)
            c.target = (t[0].pid, t[1] & ~(k.PAGE_SIZE - 1))
            c.proc = t[0]
        rows.append(Row(st.name, _norm(out), cells, getattr(k, "_epoch", None), len(log) if log is not None else 0))
        if unsupported:
            break
    if probe and rows and log is not None:
        for c in rows[-1].cells.values():
            if c.present and c.writable is None and c.proc.alive:
                try:
                    c.proc.store_faults(c.target[1])
                except (Signal, KernelError):
                    pass
    if log is not None:
        _infer_writable(rows, list(log))
    _label(rows, [w[0] for w in sc.watch])
    return rows, unsupported


def replay_and_probe(sc, rows, live, run, unknown, adopt):
    """Fill cells a run could not observe at earlier steps: for each row but
    the last with cells that ``unknown(cell)`` says are unknown, replay the
    scenario up to that step on a fresh live kernel with ``run(sc, k,
    upto)`` (which probes after its last step; the steps are deterministic
    on one CPU) and hand each unknown cell and its replayed twin to
    ``adopt(cell, replayed)``, which takes the probed value only if the
    replay shows the page in the same visible state.  Used for ``writable``
    here and for the AE of large folios' tail pages
    (:mod:`mmkit.scenarios.cow_large`)."""
    for i, row in enumerate(rows[:-1]):
        todo = [n for n, c in row.cells.items() if unknown(c)]
        if not todo:
            continue
        k = live()
        try:
            rrows, _ = run(sc, k, i + 1)
        finally:
            k.close()
        if len(rrows) != i + 1:
            continue
        for n in todo:
            adopt(row.cells[n], rrows[-1].cells[n])


def _fill_by_replay(sc, rows, live):
    """Unknown ``writable`` cells from a replay probed with stores (:func:`replay_and_probe`)."""
    def adopt(a, b):
        same = all(getattr(a, f) == getattr(b, f) for f in _FIELDS if f != "writable")
        if same and b.writable is not None:
            a.writable, a.inferred = b.writable, "+"
    replay_and_probe(sc, rows, live, lambda sc, k, upto: run_scenario(sc, k, upto=upto, probe=True),
                     lambda c: c.present and c.writable is None, adopt)


def _infer_writable(rows, log):
    """Fill unknown ``writable`` cells from the first later store by that
    process to that page, if nothing that can write-protect a PTE ran in
    between (same epoch); loads in between change nothing and are skipped."""
    for i in range(len(rows)):
        for c in rows[i].cells.values():
            if not c.present or c.writable is not None:
                continue
            pid, page = c.target
            for epoch, lpid, kind, lpage, faults in log[rows[i].log_len:]:
                if epoch != rows[i].epoch:
                    break
                if lpid == pid and lpage == page and kind in ("write", "store"):
                    c.writable = faults == 0
                    c.inferred = "*"
                    break


def _label(rows, names):
    """Identity letters; a letter retires when its PFN leaves every watched PTE."""
    letters = {}
    nxt = 0
    for r in rows:
        seen = set()
        for n in names:
            c = r.cells[n]
            if not c.present:
                continue
            if c.zero_page:
                c.label = "Z"
                continue
            if c.pfn not in letters:
                letters[c.pfn] = _letter(nxt)
                nxt += 1
            c.label = letters[c.pfn]
            seen.add(c.pfn)
        for pfn in list(letters):
            if pfn not in seen:
                del letters[pfn]


def _letter(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def compare(name, model_rows, live_rows, names, racy=()):
    """The disagreements between two runs of the same scenario, as strings."""
    fails = []
    racy_seen = False
    for i, (m, lv) in enumerate(zip(model_rows, live_rows)):
        where = f"step {i + 1} {m.step!r}"
        is_racy = (name, m.step) in racy
        if not is_racy and m.outcome != lv.outcome:
            fails.append(f"{where} outcome: model {format_outcome(m.outcome)}, live {format_outcome(lv.outcome)}")
        racy_seen = racy_seen or is_racy
        for n in names:
            a, b = m.cells[n], lv.cells[n]
            for f in _FIELDS:
                va, vb = getattr(a, f), getattr(b, f)
                if f == "exclusive" and not (a.anon and b.anon):
                    continue
                if f == "exclusive" and vb is None:
                    continue        # a tail page of a large folio: bit 34 is the head's (mmkit.live.kernel)
                if f == "writable" and (va is None or vb is None):
                    continue
                if f != "present" and not (a.present and b.present):
                    continue
                if va != vb:
                    fails.append(f"{where} {n}.{f}: model {va}, live {vb}")
            # identity relations: same page as at the previous step / as the other watches
            if i and not is_racy:
                pa, pb = model_rows[i - 1].cells[n], live_rows[i - 1].cells[n]
                if a.present and b.present and pa.present and pb.present:
                    sa, sb = a.pfn == pa.pfn, b.pfn == pb.pfn
                    if sa != sb:
                        fails.append(f"{where} {n}.same_page_as_before: model {sa}, live {sb}")
        for j, n1 in enumerate(names):
            for n2 in names[j + 1:]:
                a1, a2, b1, b2 = m.cells[n1], m.cells[n2], lv.cells[n1], lv.cells[n2]
                if all(c.present for c in (a1, a2, b1, b2)):
                    sa, sb = a1.pfn == a2.pfn, b1.pfn == b2.pfn
                    if sa != sb:
                        fails.append(f"{where} {n1}.same_page_as_{n2}: model {sa}, live {sb}")
    return fails


def default_scenarios():
    """The topic scenarios and the kernel's cow.c cases (mmkit.scenarios)."""
    from .scenarios import COW_CASES, TOPICS
    return list(TOPICS.values()) + list(COW_CASES)


def run_conformance(scenarios=None, model=None, live=None, retries=2, racy=None, replay=True):
    """Run each scenario on both kernels and compare.

    Parameters
    ----------
    scenarios : list of Scenario, optional
        Default :func:`default_scenarios`.
    model, live : callable, optional
        Factories of a fresh kernel per scenario; default
        ``Kernel(era="6.18")`` and ``LiveKernel()``.  (Passing the model
        factory twice compares the model with itself.)
    retries : int
        Extra live attempts for a scenario that disagrees (see the module notes).
    racy : dict, optional
        Default :data:`RACY`.
    replay : bool
        Fill the live ``writable`` cells that /proc cannot tell by probing:
        at the end of the run, and for earlier steps by replaying the
        scenario up to that step on a fresh live kernel (default True; needs
        a live kernel with ``store_faults``).

    Returns
    -------
    Report
    """
    from .kernel import Kernel
    if model is None:
        def model():
            return Kernel(era="6.18")
    if live is None:
        from .live import LiveKernel
        live = LiveKernel
    racy = RACY if racy is None else racy
    out = []
    for sc in scenarios if scenarios is not None else default_scenarios():
        names = [w[0] for w in sc.watch]
        mrows, _ = run_scenario(sc, model())
        attempts = 0
        while True:
            attempts += 1
            k = live()
            try:
                lrows, unsupported = run_scenario(sc, k, probe=replay)
            finally:
                close = getattr(k, "close", None)
                if close:
                    close()
            if replay and hasattr(k, "access_log"):
                _fill_by_replay(sc, lrows, live)
            fails = compare(sc.name, mrows[:len(lrows)], lrows, names, racy)
            if unsupported:         # the ENOSYS step itself is expected to disagree
                fails = [f for f in fails if not f.startswith(f"step {len(lrows)} ")]
            if not fails or attempts > retries:
                break
        out.append(Comparison(sc.name, sc.title, sc.watch, mrows[:len(lrows)], lrows, fails, unsupported,
                              {key: why for key, why in racy.items() if key[0] == sc.name}, attempts))
    return Report(out)


def main(argv=None):
    """``python -m mmkit.conformance [--large] [-s NAME]... [-q]``: exit 1 on
    disagreement, 0 when everything agrees or the live kernel is unavailable
    (says why).  ``--large`` runs the large-folio scenarios instead
    (:mod:`mmkit.scenarios.cow_large`: order, head, PMD/PTE mapping, per-page
    mapcount and AE of THPs and mTHPs)."""
    ap = argparse.ArgumentParser(prog="python -m mmkit.conformance",
                                 description="Run the scenarios on the model and on the live kernel "
                                             "and compare them step by step.")
    ap.add_argument("-s", "--scenario", action="append", help="only this scenario (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true", help="summary only, no tables")
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--large", action="store_true", help="the large-folio (THP, mTHP) scenarios")
    args = ap.parse_args(argv)
    from .live import available
    ok, why = available()
    if not ok:
        print(f"conformance skipped: live kernel unavailable: {why}")
        return 0
    if args.large:
        from .scenarios.cow_large import get_large, large_scenarios, run_large_conformance
        scs = [get_large(n) for n in args.scenario] if args.scenario else large_scenarios()
        rep = run_large_conformance(scs, retries=args.retries)
        print(rep.format() if not args.quiet else "\n".join(rep.failures) or "all agree")
        print(f"{len(rep.comparisons)} large-folio scenario(s), {len(rep.failures)} disagreement(s)")
        return 0 if rep.ok else 1
    scs = default_scenarios()
    if args.scenario:
        from .scenarios import get
        scs = [get(n) for n in args.scenario]
    rep = run_conformance(scs, retries=args.retries)
    print(rep.format(tables=not args.quiet))
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
