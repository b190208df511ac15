#!/usr/bin/env python3
"""Load test of the workshop hub on loopback (``make bench-hub``).

    python hub/bench.py                          # 30 students, notebooks 00-02
    python hub/bench.py --students 5 --notebooks 00-orientation.ipynb --json out.json
    python hub/bench.py --students 5 --notebooks 07-history-lab.ipynb 08-mapcount-lab.ipynb   # a lab day
    python hub/bench.py --students 1 --keep-kernels --notebooks 00-orientation.ipynb 07-history-lab.ipynb 08-mapcount-lab.ipynb

A hub is started in a temporary folder on free 127.0.0.1 ports.  Every simulated student
(one thread each) logs in through the login form, asks the hub's REST API for a server and,
once all servers are up, runs every code cell of each notebook in order on their own copy,
through the kernel websocket, all students at once.  Meanwhile a sampler reads the resident
memory (RSS, and PSS where the kernel gives it) of each student's single-user server plus its
kernels (and of the server alone).  ``--keep-kernels`` leaves each notebook's kernel running
until the student's last notebook is done, as JupyterLab users with several tabs open do.  The report: cell latency p50/p95/max (execute_request -> execute_reply), server
start time, memory per student (peak), the hub's and proxy's own memory, and every error
(there must be none).  It is bounded: --timeout seconds in all (each wait inside is bounded
too), then the hub and every process it started are stopped, also on failure or Ctrl-C.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import workshop  # noqa: E402

DEFAULT_NOTEBOOKS = ["00-orientation.ipynb", "01-fork.ipynb", "02-cow.ipynb"]
MiB = 1024 * 1024


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Sampler(threading.Thread):
    """Peak memory per student (server + kernels) and of the hub's own processes."""

    def __init__(self, hub, every=3.0):
        super().__init__(daemon=True)
        self.hub, self.every = hub, every
        self.halt = threading.Event()
        self.peak = {}                  # student -> {"rss": bytes, "pss": bytes, "procs": n}
        self.base = {"rss": 0, "pss": 0}
        self.samples = 0

    @staticmethod
    def _mem(p):
        import psutil
        try:
            full = p.memory_full_info()
            return full.rss, getattr(full, "pss", full.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0, 0

    def sample(self):
        import psutil
        per, base = {}, {"rss": 0, "pss": 0}
        for p in self.hub.processes():
            try:
                cmd = " ".join(p.cmdline())
                user = p.environ().get("JUPYTERHUB_USER") if "jupyterhub-singleuser" in cmd else None
                kids = p.children(recursive=True) if user else []
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if user:
                rss = pss = 0
                for q in [p, *kids]:
                    r, s = self._mem(q)
                    rss, pss = rss + r, pss + s
                per[user] = {"rss": rss, "pss": pss, "procs": 1 + len(kids), "server_rss": self._mem(p)[0],
                             "kernels": sum("ipykernel" in " ".join(q.cmdline()) for q in kids)}
            elif "configurable-http-proxy" in cmd or "jupyterhub_idle_culler" in cmd:
                r, s = self._mem(p)
                base["rss"] += r
                base["pss"] += s
        r, s = self._mem(psutil.Process(self.hub.proc.pid))
        base["rss"] += r
        base["pss"] += s
        for user, m in per.items():
            old = self.peak.get(user)
            if old is None or m["rss"] > old["rss"]:
                self.peak[user] = m
        for k in base:
            self.base[k] = max(self.base[k], base[k])
        self.samples += 1

    def run(self):
        while not self.halt.wait(self.every):
            try:
                self.sample()
            except Exception:           # a process that vanished mid-read: next sample
                pass


def run(args):
    deadline = time.monotonic() + args.timeout
    left = lambda: max(1.0, deadline - time.monotonic())     # noqa: E731
    names = [f"student{i:02d}" for i in range(1, args.students + 1)]
    errors, starts, cells = [], {}, {}
    lock = threading.Lock()

    def err(name, what):
        with lock:
            errors.append(f"{name}: {what}")

    hub = workshop.Hub(cull_timeout=int(args.timeout) + 600, keep_log=args.log)
    t0 = time.monotonic()
    with hub:
        run_as = (hub.state / "students-run-as").read_text().strip()
        print(f"hub up on {hub.url} in {time.monotonic() - t0:.1f} s; students run as {run_as}", flush=True)
        sampler = Sampler(hub)
        sampler.start()
        students = {n: workshop.Student(hub, n) for n in names}
        ready = threading.Barrier(len(names) + 1, timeout=args.timeout)

        def student(name):
            s = students[name]
            try:
                t = time.monotonic()
                s.login()
                s.start(timeout=min(300, left()))
                starts[name] = time.monotonic() - t
            except Exception as e:
                err(name, f"login/start: {e!r}")
            try:
                ready.wait(timeout=left())
            except threading.BrokenBarrierError:
                return
            if name not in starts:
                return
            kept = [] if args.keep_kernels else None
            for nb in args.notebooks:
                try:
                    got = s.run_notebook(nb, timeout=left(), keep=kept)
                except Exception as e:
                    err(name, f"{nb}: {e!r}")
                    continue
                with lock:
                    cells.setdefault(nb, []).extend(dt for dt, _ in got)
                for i, (_, e) in enumerate(got):
                    if e:
                        err(name, f"{nb} code cell {i}: {e}")
            if kept:
                time.sleep(2 * sampler.every)          # let the sampler see every kernel open
                sampler.sample()
                for k in kept:
                    k.close()

        threads = [threading.Thread(target=student, args=(n,), daemon=True) for n in names]
        for t in threads:
            t.start()
        try:
            ready.wait(timeout=left())
        except threading.BrokenBarrierError:
            err("bench", "not every student got past login/start in time")
        t_run = time.monotonic()
        print(f"{len(starts)}/{len(names)} servers up in {t_run - t0:.1f} s; running "
              f"{', '.join(args.notebooks)} in every server at once", flush=True)
        for t in threads:
            t.join(left())
        if any(t.is_alive() for t in threads):
            err("bench", f"timeout: students still running after {args.timeout} s")
        wall = time.monotonic() - t_run
        sampler.sample()
        sampler.halt.set()
        sampler.join(10)
        for s in students.values():
            if s.token:
                try:
                    s.stop(timeout=min(60, left()))
                except Exception as e:
                    err(s.name, f"stop: {e!r}")
        started = hub.processes()
    leftover = [p.pid for p in started if p.is_running()]
    if leftover:
        errors.append(f"bench: processes left running after the hub stopped: {leftover}")

    every = [dt for xs in cells.values() for dt in xs]
    peaks = list(sampler.peak.values())
    result = {
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "students_run_as": run_as},
        "students": len(names), "notebooks": args.notebooks, "keep_kernels": bool(args.keep_kernels),
        "servers_started": len(starts),
        "server_start_s": {"p50": percentile(list(starts.values()), .5), "max": max(starts.values(), default=None)},
        "cells_executed": len(every), "run_wall_s": round(wall, 1),
        "cell_latency_s": {"p50": percentile(every, .5), "p95": percentile(every, .95), "max": max(every, default=None)},
        "per_notebook_p50_p95_s": {nb: [percentile(xs, .5), percentile(xs, .95)] for nb, xs in cells.items()},
        "memory_per_student_mib": {
            "rss_median": statistics.median(m["rss"] for m in peaks) / MiB if peaks else None,
            "rss_max": max(m["rss"] for m in peaks) / MiB if peaks else None,
            "pss_median": statistics.median(m["pss"] for m in peaks) / MiB if peaks else None,
            "server_rss_median": statistics.median(m["server_rss"] for m in peaks) / MiB if peaks else None,
            "kernels_open_at_peak": max((m["kernels"] for m in peaks), default=None),
            "processes": max((m["procs"] for m in peaks), default=None)},
        "hub_proxy_culler_mib": {"rss": sampler.base["rss"] / MiB, "pss": sampler.base["pss"] / MiB},
        "memory_samples": sampler.samples,
        "errors": errors,
    }
    return result


def report(r):
    lat, mem = r["cell_latency_s"], r["memory_per_student_mib"]
    fmt = lambda x: "n/a" if x is None or x != x else f"{x:.2f}"     # noqa: E731
    print(f"\nmmkit hub load test: {r['students']} students, {', '.join(r['notebooks'])} "
          f"({r['machine']['cpus']} CPUs, {r['machine']['mem_total_gib']} GiB, Linux {r['machine']['kernel']}; "
          f"students run as {r['machine']['students_run_as']})")
    print(f"  servers started      {r['servers_started']}/{r['students']}, start time p50 "
          f"{fmt(r['server_start_s']['p50'])} s, max {fmt(r['server_start_s']['max'])} s")
    print(f"  cells executed       {r['cells_executed']} in {r['run_wall_s']} s")
    print(f"  cell latency         p50 {fmt(lat['p50'])} s   p95 {fmt(lat['p95'])} s   max {fmt(lat['max'])} s")
    for nb, (p50, p95) in r["per_notebook_p50_p95_s"].items():
        print(f"    {nb:24s} p50 {fmt(p50)} s   p95 {fmt(p95)} s")
    print(f"  memory per student   peak RSS median {fmt(mem['rss_median'])} MiB, max {fmt(mem['rss_max'])} MiB "
          f"(PSS median {fmt(mem['pss_median'])} MiB; server + kernels, {mem['kernels_open_at_peak']} kernel(s) "
          f"open at the peak; the server alone {fmt(mem['server_rss_median'])} MiB)")
    print(f"  hub+proxy+culler     RSS {fmt(r['hub_proxy_culler_mib']['rss'])} MiB")
    print(f"  errors               {len(r['errors'])}")
    for e in r["errors"][:20]:
        print(f"    {e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--notebooks", nargs="+", default=DEFAULT_NOTEBOOKS)
    ap.add_argument("--keep-kernels", action="store_true",
                    help="keep each notebook's kernel running until the student's last notebook is done")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run (default 1800)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--log", help="keep the hub's log (hub, proxy and every server) here")
    args = ap.parse_args(argv)
    if not 1 <= args.students <= 200:
        ap.error("--students: 1..200")
    try:
        r = run(args)
    except workshop.Missing as e:
        print(f"make bench-hub: {e}", file=sys.stderr)
        return 2
    report(r)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
