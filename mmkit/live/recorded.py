"""Recorded live runs: what the real kernel did, for readers who cannot run it.

A student on a shared hub is not root, and a laptop may not run Linux, so
the live backend (:mod:`mmkit.live`) cannot run there.  The package ships
the conformance scenarios' live side recorded on a real kernel
(``recorded/linux-*.json``, written by ``python -m mmkit.live record``, see
:mod:`mmkit.live.record`); :func:`recorded_result` turns one scenario of it
into what the notebooks' live cells show instead of just "skipped": the
same side-by-side table, marked "recorded on Linux 6.18.44 (x86_64,
2026-12-02)".

>>> from mmkit.live.recorded import recorded_result
>>> r = recorded_result("fork", "not root")
>>> r.ran, r.recorded_on.startswith("recorded on Linux ")
(False, True)
>>> "recorded on Linux" in r._repr_html_() and "not root" in str(r)
True
"""

import functools
import html
import json
import os
import pathlib

__all__ = ["RECORDED_DIR", "Recording", "RecordedResult", "recording", "recordings", "recorded_result"]

RECORDED_DIR = pathlib.Path(__file__).resolve().parent / "recorded"


def _version_key(path):
    try:
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return (-1,), ""
    nums = []
    for x in str(data.get("version", "0")).split("."):
        nums.append(int(x) if x.isdigit() else 0)
    return tuple(nums), str(data.get("date", ""))


def recordings(folder=RECORDED_DIR):
    """The recording files shipped (or re-recorded) in ``folder``, newest
    kernel (then newest date) first."""
    files = sorted(pathlib.Path(folder).glob("linux-*.json"))
    return sorted(files, key=_version_key, reverse=True)


class Recording:
    """One recording file: its machine, date and scenarios."""

    def __init__(self, data, path=None):
        self.data = data
        self.path = path
        self.kernel = data.get("kernel", "?")
        self.version = data.get("version", self.kernel.split("-")[0])
        self.machine = data.get("machine", "?")
        self.date = data.get("date", "?")
        self.scenarios = {s["name"]: s for s in data.get("scenarios", [])}

    @classmethod
    def load(cls, path):
        path = pathlib.Path(path)
        return cls(json.loads(path.read_text(encoding="utf-8")), path)

    @property
    def mark(self):
        """``"recorded on Linux 6.18.44 (x86_64, 2026-12-02)"``."""
        return f"recorded on Linux {self.version} ({self.machine}, {self.date})"

    def comparison(self, name, model=True):
        """The scenario ``name`` as a :class:`mmkit.conformance.Comparison`:
        the recorded live side against the model as it is now (``model=True``,
        compared afresh, so a model that has drifted from the recorded kernel
        shows as a disagreement), or against the model side recorded with it
        (``model=False``, or when the scenario no longer exists).  None if
        the recording lacks ``name``."""
        from ..conformance import Cell, Comparison, Row, compare
        s = self.scenarios.get(name)
        if s is None:
            return None

        def rows(rs):
            return [Row(r["step"], r["outcome"], {n: Cell(**c) for n, c in r["cells"].items()}) for r in rs]
        live = rows(s["live"])
        racy = {(s["name"], step): why for step, why in s.get("racy", [])}
        mrows, fails = rows(s["model"]), list(s.get("failures", []))
        if model:
            try:
                mrows, fails = self._model_now(name, live, racy, s.get("unsupported"))
            except Exception:           # scenario renamed or gone: the recorded model side
                pass
        return Comparison(s["name"], s["title"], [tuple(w) for w in s["watch"]], mrows, live, fails,
                          s.get("unsupported"), racy, s.get("attempts", 1))

    @staticmethod
    def _model_now(name, live, racy, unsupported):
        from ..conformance import compare, run_scenario
        from ..kernel import Kernel
        from ..scenario import format_outcome
        from ..scenarios import get
        sc = get(name)
        mrows, _ = run_scenario(sc, Kernel(era="6.18"))
        mrows = mrows[:len(live)]
        for r in mrows:                 # outcomes as recorded: the strings the tables print
            r.outcome = format_outcome(r.outcome)
        fails = compare(name, mrows, live, [w[0] for w in sc.watch], racy)
        if unsupported:                 # the ENOSYS step itself is expected to disagree
            fails = [f for f in fails if not f.startswith(f"step {len(live)} ")]
        return mrows, fails

    def __repr__(self):
        return f"<Recording {self.mark}: {len(self.scenarios)} scenario(s)>"


@functools.lru_cache(maxsize=4)
def _load(path, mtime):
    return Recording.load(path)


def recording(path=None):
    """The recording to show: ``path``, else ``$MMKIT_RECORDED`` (a file),
    else the newest one in the package; None if there is none."""
    path = path or os.environ.get("MMKIT_RECORDED")
    if path is None:
        found = recordings()
        if not found:
            return None
        path = found[0]
    path = pathlib.Path(path)
    try:
        return _load(str(path), path.stat().st_mtime)
    except (OSError, ValueError, KeyError):
        return None


class RecordedResult:
    """What a live cell shows where the live backend cannot run: the reason,
    and the run recorded on a real kernel (same surface as
    :class:`mmkit.notebook.LiveResult`: ``name``, ``ran`` (False: nothing ran
    here), ``ok`` (the recorded verdict), ``comparison``, ``reason``)."""

    def __init__(self, name, reason, comparison, rec):
        self.name = name
        self.reason = reason
        self.comparison = comparison
        self.recording = rec

    ran = False

    @property
    def ok(self):
        """True if the model and the recorded live kernel agreed."""
        return self.comparison.ok

    @property
    def recorded_on(self):
        return self.recording.mark

    def _verdict(self):
        if not self.comparison.ok:
            return "model and live kernel DISAGREED"
        if self.comparison.unsupported:
            return "model and live kernel agreed as far as user space could go"
        return "model and live kernel agreed"

    def __str__(self):
        return (f"live kernel unavailable here ({self.reason}); showing the run {self.recorded_on}: "
                f"{self._verdict()}\n{self.comparison.table()}")

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        from ..conformance import KEY
        e = html.escape
        return (f'<div class="mm-live mm-recorded" data-ran="false" data-recorded="true" '
                f'data-ok="{str(self.ok).lower()}">'
                f'<div style="color:#666">Live kernel unavailable here ({e(self.reason)}). Shown instead: '
                f'the run <b class="mm-recorded-on">{e(self.recorded_on)}</b> '
                f'(<code>python -m mmkit.live record</code> re-records it as root).</div>'
                f"<b>{e(self._verdict())}</b><pre>{e(self.comparison.table())}</pre>"
                f"<small>{e('Each cell: ' + KEY + '.')}</small></div>")


def recorded_result(scenario, reason, path=None):
    """The recorded run of ``scenario`` (a name or a Scenario) to show in
    place of a live run that cannot happen here because of ``reason``; None
    if no recording has it (then say "skipped" as before)."""
    name = getattr(scenario, "name", scenario)
    try:
        rec = recording(path)
        comp = rec.comparison(name) if rec is not None else None
    except Exception:                   # a damaged or foreign file: fall back to "skipped"
        return None
    if comp is None:
        return None
    return RecordedResult(name, reason, comp, rec)
