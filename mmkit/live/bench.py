"""Timing anchor: what the real kernel's fault paths cost, per 4 KiB page.

``make bench`` prints these beside the model's own timings.  The loops run
in the C worker (``worker.c``, mode ``bench``), pinned to one CPU, on a
private anonymous region with THP disabled (MADV_NOHUGEPAGE):

first_touch
    a write fault on a never-touched page: do_anonymous_page().
fork
    fork() of a process with the region populated, divided by the pages:
    copy_page_range() (shares each page, write-protects both PTEs).
cow_fault
    the child's first write to each shared page: do_wp_page() -> wp_page_copy().
reuse_fault
    the parent's write after the child exited: do_wp_page() reuses the
    page in place (wp_can_reuse_anon_folio()).

Numbers are medians over ``reps`` runs, in ns per page; the machine may be
shared, so expect noise (see /work/shared/reference/live-kernel.md,
scenario 8).
"""

import os
import subprocess

from ._build import worker_binary
from .availability import require

__all__ = ["live_timings"]


def live_timings(npages=65536, reps=5, cpu=None, timeout=120):
    """Measure first touch, fork, COW fault and reuse fault on the real kernel.

    Parameters
    ----------
    npages : int
        Size of the region in 4 KiB pages (default 65536 = 256 MiB).
    reps : int
        Repetitions; the median is returned (at most 64).
    cpu : int, optional
        CPU to pin to (default: the last one allowed).
    timeout : float
        Seconds before the measurement is abandoned.

    Returns
    -------
    dict
        ``{"fork", "first_touch", "cow_fault", "reuse_fault"}`` -> ns per page.

    Raises
    ------
    LiveUnavailable
        When the live backend cannot run here (see :func:`mmkit.live.available`).
    RuntimeError
        If the worker fails or times out.
    """
    require()
    if not isinstance(npages, int) or npages <= 0:
        raise ValueError(f"npages must be a positive int, not {npages!r}")
    cpu = sorted(os.sched_getaffinity(0))[-1] if cpu is None else int(cpu)
    try:
        r = subprocess.run([worker_binary(), "bench", str(npages), str(max(1, min(64, reps))), str(cpu)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"live bench did not finish within {timeout} s") from e
    if r.returncode != 0:
        raise RuntimeError(f"live bench failed (exit {r.returncode}): {r.stderr.strip()}")
    out = {}
    for line in r.stdout.splitlines():
        name, value = line.split()
        out[name] = float(value)
    return {k: out[k] for k in ("fork", "first_touch", "cow_fault", "reuse_fault")}
