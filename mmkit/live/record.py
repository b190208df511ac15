"""Record every conformance scenario's live side on this machine's kernel.

``python -m mmkit.live record`` runs :func:`mmkit.conformance.run_conformance`
on the model and on :class:`~mmkit.live.LiveKernel` (root, Linux >= 5.19;
see :func:`mmkit.live.available`) and writes both sides of every scenario,
with the kernel release, the architecture and the date, to a JSON file.
By default it goes to the package's ``recorded/`` folder as
``linux-MAJOR.MINOR.json``, which is what :mod:`mmkit.live.recorded` shows
wherever the live backend cannot run (a student on a shared hub is not
root).  ``-o FILE`` writes elsewhere; ``-s NAME`` records only some
scenarios (for a quick look; the shipped file has them all).  A scenario
whose live side raises is listed under ``errors`` with the exception, the
others are still recorded, and the command exits 1.

The file holds observations only: what each step returned and what the
watched pages looked like (identity letter, mapcount, PageAnonExclusive,
PTE writable) on each kernel, the disagreements found and what user space
could not do (``unsupported``).  Nothing is computed from it at load time
except the table's layout.
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import sys
import time

__all__ = ["FORMAT", "RECORDED_DIR", "comparison_to_dict", "record", "recorded_scenarios", "default_path", "main"]

#: version of the file layout (bump when a field changes meaning)
FORMAT = 1
RECORDED_DIR = pathlib.Path(__file__).resolve().parent / "recorded"
_CELL_FIELDS = ("present", "pfn", "anon", "zero_page", "in_page_cache", "mapcount", "exclusive", "writable",
                "inferred", "refcount", "pincount", "label")


def _cell(c, pfns):
    d = {f: getattr(c, f) for f in _CELL_FIELDS}
    if d["pfn"] is not None:        # physical addresses stay private: 1, 2... in order of appearance
        d["pfn"] = pfns.setdefault(d["pfn"], len(pfns) + 1)
    return d


def _outcome(o):
    from ..scenario import format_outcome
    return format_outcome(o)


def _rows(rows):
    pfns = {}
    return [{"step": r.step, "outcome": _outcome(r.outcome), "cells": {n: _cell(c, pfns) for n, c in r.cells.items()}}
            for r in rows]


def comparison_to_dict(c):
    """One :class:`mmkit.conformance.Comparison` as plain JSON data (outcomes
    as the tables print them; PFNs replaced by 1, 2... per side, which keeps
    "same page as" relations and leaves out the machine's physical addresses)."""
    return {"name": c.name, "title": c.title, "watch": [list(w) for w in c.watch],
            "model": _rows(c.model), "live": _rows(c.live), "failures": list(c.failures),
            "unsupported": c.unsupported, "racy": [[step, why] for (_, step), why in c.racy.items()],
            "attempts": c.attempts, "ok": c.ok}


def _release_version(release):
    """``"6.18.44-fc-v1045"`` -> ``"6.18.44"``."""
    return release.split("-")[0]


def default_path(release=None):
    """``.../mmkit/live/recorded/linux-6.18.json`` for this kernel."""
    v = _release_version(release or platform.release()).split(".")
    return RECORDED_DIR / f"linux-{'.'.join(v[:2])}.json"


def recorded_scenarios():
    """What a recording holds: every conformance scenario
    (:func:`mmkit.conformance.default_scenarios`) and the large-folio topics
    (:data:`mmkit.scenarios.LARGE_TOPICS`, which notebook 09's live cells show)."""
    from ..conformance import default_scenarios
    from ..scenarios import LARGE_TOPICS
    return default_scenarios() + list(LARGE_TOPICS.values())


def record(scenarios=None, retries=2, log=print):
    """Run the conformance scenarios on both kernels; return the recording
    (a dict ready for JSON).  Raises :class:`~mmkit.live.LiveUnavailable`
    when the live backend cannot run here."""
    from . import available
    from .availability import require
    from ..conformance import run_conformance
    from .. import __version__ as mmkit_version
    require()
    scs = recorded_scenarios() if scenarios is None else scenarios
    out, errors = [], []
    t0 = time.perf_counter()
    for sc in scs:
        t = time.perf_counter()
        try:
            c = run_conformance([sc], retries=retries).comparisons[0]
        except Exception as e:          # the live side cannot run it at all: say so in the file, go on
            errors.append({"name": sc.name, "error": f"{type(e).__name__}: {e}"})
            if log:
                log(f"  {sc.name:40} {'ERROR':24} {time.perf_counter() - t:5.1f} s  {type(e).__name__}: {e}")
            continue
        out.append(comparison_to_dict(c))
        if log:
            state = "agree" if c.ok and not c.unsupported else ("partly unsupported live" if c.ok else "DISAGREE")
            log(f"  {sc.name:40} {state:24} {time.perf_counter() - t:5.1f} s")
    io_uring_ok, io_uring_why = available("io_uring")
    return {
        "format": FORMAT,
        "kernel": platform.release(),
        "version": _release_version(platform.release()),
        "machine": platform.machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "mmkit": mmkit_version,
        "model_era": "6.18",
        "io_uring": io_uring_ok,
        "backend": available()[1],
        "seconds": round(time.perf_counter() - t0, 1),
        "scenarios": out,
        "errors": errors,
    }


def write(rec, path):
    """Write ``rec`` as JSON (stable key order, one file), atomically."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(rec, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mmkit.live record",
                                 description="Run every conformance scenario on the model and on this machine's "
                                             "kernel (root, Linux) and save the observations for readers who "
                                             "cannot run the live backend.")
    ap.add_argument("-o", "--output", type=pathlib.Path, help=f"default: {default_path()}")
    ap.add_argument("-s", "--scenario", action="append", help="only this scenario (repeatable)")
    ap.add_argument("--retries", type=int, default=2)
    args = ap.parse_args(argv)
    from .availability import available
    ok, why = available()
    if not ok:
        print(f"cannot record: the live backend is unavailable here: {why}", file=sys.stderr)
        return 2
    scs = None
    if args.scenario:
        from ..scenarios import get
        scs = [get(n) for n in args.scenario]
    path = args.output or default_path()
    print(f"recording on Linux {platform.release()} ({platform.machine()}) -> {path}")
    rec = record(scs, retries=args.retries)
    write(rec, path)
    bad = [s["name"] for s in rec["scenarios"] if not s["ok"]]
    print(f"{len(rec['scenarios'])} scenario(s) recorded in {rec['seconds']} s"
          + (f"; model and live kernel DISAGREE on {', '.join(bad)}" if bad else "; model and live kernel agree"))
    if rec["errors"]:
        print(f"NOT recorded ({len(rec['errors'])}): the live side raised: "
              + "; ".join(f"{e['name']}: {e['error']}" for e in rec["errors"]), file=sys.stderr)
    return 1 if rec["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
