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

:func:`live_thp_timings` measures fork + COW of every 4 KiB subpage of a
region backed by 2 MiB THPs (MADV_HUGEPAGE, 2 MiB aligned; 1 GiB by
default): the work of the model's THP bench, on this kernel.

Numbers are medians over ``reps`` runs, in ns per page; the machine may be
shared, so expect noise (see /work/shared/reference/live-kernel.md,
scenario 8).
"""

import os
import subprocess

from ._build import worker_binary
from .availability import require

__all__ = ["live_timings", "live_thp_timings"]


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


def live_thp_timings(npages=262144, reps=3, cpu=None, timeout=300):
    """fork + COW of every 4 KiB subpage of a region of 2 MiB THPs, on this kernel.

    The C worker maps ``npages`` pages (default 262144 = 1 GiB) 2 MiB
    aligned, MADV_HUGEPAGE, populates them, forks, and the child writes one
    byte of every 4 KiB page while the parent still maps it: per 2 MiB, one
    PMD copied at fork (copy_huge_pmd()), one PMD split at the child's first
    write (do_huge_pmd_wp_page()), then 512 4 KiB copies.

    Needs THP for 2 MiB in ``madvise`` or ``always`` mode (the default on
    this machine); the result says how much of the region got THPs.

    Returns
    -------
    dict
        ``thp_fork_cow``: fork + every COW fault, ns per 4 KiB page (the
        figure ``make bench`` prints beside the model's); ``thp_fork`` and
        ``thp_cow_fault``: its two parts; ``thp_coverage``: the share of the
        region that was PMD-mapped before fork (1.0 = all THPs).

    Raises
    ------
    LiveUnavailable, RuntimeError
        As :func:`live_timings`.
    """
    require()
    if not isinstance(npages, int) or isinstance(npages, bool) or npages <= 0 or npages % 512:
        raise ValueError(f"npages must be a positive multiple of 512 (2 MiB), not {npages!r}")
    cpu = sorted(os.sched_getaffinity(0))[-1] if cpu is None else int(cpu)
    try:
        r = subprocess.run([worker_binary(), "bench-thp", str(npages), str(max(1, min(64, reps))), str(cpu)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"live THP bench did not finish within {timeout} s") from e
    if r.returncode != 0:
        raise RuntimeError(f"live THP bench failed (exit {r.returncode}): {r.stderr.strip()}")
    out = {}
    for line in r.stdout.splitlines():
        name, value = line.split()
        out[name] = float(value)
    return {k: out[k] for k in ("thp_fork_cow", "thp_fork", "thp_cow_fault", "thp_coverage")}
