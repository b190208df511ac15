"""``make bench``: the model's speed and memory, beside the live kernel's.

Run as ``python -m mmkit.bench [--pages N] [--quick]``.  Prints, in one
run: ns per page for first touch, fork, COW fault and reuse fault on the
model (the same ``p.write`` calls a user makes) and, where
:mod:`mmkit.live` can run, on this machine's kernel, with the ratio; the
time to fork and fully COW a 1 GiB process; the model's memory per mapped
page (tracemalloc); and the drawing figures of :mod:`mmkit.bench_viz`.
"""

import argparse
import gc
import time
import tracemalloc

from .kernel import Kernel
from .pageinfo import PAGE_SIZE

__all__ = ["model_timings", "model_memory", "thp_fork_and_cow", "thp_model_memory", "main"]

#: issue #2 targets: model / kernel ratio per operation
TARGETS = {"fork": 10.0, "first_touch": 3.0, "cow_fault": 3.0, "reuse_fault": 3.0}   # reuse: issue #14


def model_timings(npages=65536, reps=3):
    """ns per page on the model for first touch, fork, COW and reuse faults.

    Each figure is the best of ``reps`` runs (like the kernel's anchor
    figures, which are the minimum of several).  The COW fault is taken by
    the child writing every page after fork; the reuse fault by the parent
    writing every page after the child has exited.
    """
    best = {}
    for _ in range(reps):
        k = Kernel()
        p = k.spawn("parent")
        a = p.mmap(npages)
        addrs = [a + i * PAGE_SIZE for i in range(npages)]
        data = b"written!"
        t0 = time.perf_counter()
        for x in addrs:
            p.write(x, data)
        t1 = time.perf_counter()
        c = p.fork("child")
        t2 = time.perf_counter()
        for x in addrs:
            c.write(x, data)
        t3 = time.perf_counter()
        c.exit()
        # the parent's pages were left shared by the child's COW: refcount 1 now
        t4 = time.perf_counter()
        for x in addrs:
            p.write(x, data)
        t5 = time.perf_counter()
        got = {"first_touch": t1 - t0, "fork": t2 - t1, "cow_fault": t3 - t2, "reuse_fault": t5 - t4}
        for key, v in got.items():
            per = v * 1e9 / npages
            best[key] = min(best.get(key, per), per)
        del k, p, c
        gc.collect()
    return best


def fork_and_cow_1gib(npages=262144):
    """Seconds to fork a process of ``npages`` written pages and COW them all."""
    k = Kernel()
    p = k.spawn("parent")
    a = p.mmap(npages)
    addrs = [a + i * PAGE_SIZE for i in range(npages)]
    for x in addrs:
        p.write(x, b"written!")
    t0 = time.perf_counter()
    c = p.fork("child")
    for x in addrs:
        c.write(x, b"child!!!")
    return time.perf_counter() - t0


def model_memory(npages=262144):
    """Bytes of model memory per mapped page after fork + full COW.

    tracemalloc measures everything the model allocates (folios, PTEs, page
    tables, page contents, VMAs, the trace) for a parent and a child that
    each map ``npages`` written pages, then the figure is divided by the
    present PTEs (2 x npages).
    """
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    k = Kernel()
    p = k.spawn("parent")
    a = p.mmap(npages)
    for i in range(npages):
        p.write(a + i * PAGE_SIZE, b"written!")
    c = p.fork("child")
    for i in range(npages):
        c.write(a + i * PAGE_SIZE, b"child!!!")
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    mapped = 2 * npages
    return used / mapped, used, k.nr_folios


def _thp_process(npages):
    """A kernel and a process whose ``npages`` (a multiple of 512) are
    written through the public API in a MADV_HUGEPAGE range: npages / 512
    PMD-mapped THPs."""
    k = Kernel()
    p = k.spawn("parent")
    a = p.mmap(npages)
    p.madvise(a, npages, "hugepage")
    for i in range(npages):
        p.write(a + i * PAGE_SIZE, b"written!")
    return k, p, a


def thp_fork_and_cow(npages=262144):
    """Seconds to fork a process of ``npages`` pages backed by 2 MiB THPs
    and COW every 4 KiB subpage in the child (each child write: the first
    on a THP splits the child's PMD, every one copies 4 KiB, as
    do_huge_pmd_wp_page() and do_wp_page() do on 6.18).

    Returns (fork seconds, COW seconds)."""
    k, p, a = _thp_process(npages)
    addrs = [a + i * PAGE_SIZE for i in range(npages)]
    t0 = time.perf_counter()
    c = p.fork("child")
    t1 = time.perf_counter()
    for x in addrs:
        c.write(x, b"child!!!")
    return t1 - t0, time.perf_counter() - t1


def thp_model_memory(npages=262144):
    """Bytes of model memory per mapped page: ``npages`` pages in 2 MiB
    THPs, after fork (the PMDs shared), and after the child COWed every
    subpage (the child's PMDs split into PTEs, 4 KiB copies).  Returns
    (bytes per page after fork, bytes per page after full COW); pages
    mapped are 2 x npages each time."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    k, p, a = _thp_process(npages)
    c = p.fork("child")
    after_fork = tracemalloc.get_traced_memory()[0] - base
    for i in range(npages):
        c.write(a + i * PAGE_SIZE, b"child!!!")
    after_cow = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return after_fork / (2 * npages), after_cow / (2 * npages)


def _live_timings(npages):
    try:
        from .live import available
        ok, why = available()
        if not ok:
            return None, why
        from .live.bench import live_timings
        return live_timings(npages), ""
    except ImportError as e:              # the live backend is optional
        return None, f"mmkit.live not importable: {e}"


def _live_thp_timings(npages):
    try:
        from .live import available
        ok, why = available()
        if not ok:
            return None, why
        from .live.bench import live_thp_timings
        return live_thp_timings(npages - npages % 512 or 512), ""
    except ImportError as e:              # the live backend is optional
        return None, f"mmkit.live not importable: {e}"
    except (RuntimeError, ValueError, OSError) as e:
        return None, f"the kernel's THP run failed: {e}"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mmkit.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=65536, help="pages per timing run (default 65536 = 256 MiB)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = ap.parse_args(argv)
    n = 4096 if args.quick else args.pages
    big = 8192 if args.quick else 262144

    live, why = _live_timings(n)
    model = model_timings(n, reps=1 if args.quick else 3)
    print(f"mmkit bench: {n} pages ({n * PAGE_SIZE >> 20} MiB) per run, ns per 4 KiB page, best of runs")
    print(f"{'operation':14} {'model':>10} {'kernel':>10} {'ratio':>7} {'target':>7}")
    for key in ("first_touch", "fork", "cow_fault", "reuse_fault"):
        kern = live.get(key) if live else None
        ratio = model[key] / kern if kern else None
        target = TARGETS[key]
        print(f"{key:14} {model[key]:10.0f} {kern if kern else float('nan'):10.0f} "
              f"{ratio if ratio else float('nan'):7.2f} {('<= %.0fx' % target) if target else '':>7}")
    if not live:
        print(f"(live kernel figures unavailable: {why})")
    secs = fork_and_cow_1gib(big)
    print(f"fork + full COW of {big} pages ({big * PAGE_SIZE >> 20} MiB): {secs:.2f} s (target <= 2 s for 1 GiB)")
    per, used, folios = model_memory(big)
    print(f"model memory after fork + full COW of {big} pages: {used / 2**20:.1f} MiB, "
          f"{per:.0f} bytes per mapped page (target < 300), {folios} pages allocated")
    fork_s, cow_s = thp_fork_and_cow(big)
    print(f"THP: fork of {big} pages in 2 MiB THPs ({big * PAGE_SIZE >> 20} MiB): {fork_s * 1e3:.1f} ms "
          f"({fork_s * 1e9 / big:.1f} ns per page); "
          f"child COW of every 4 KiB subpage: {cow_s:.2f} s ({cow_s * 1e9 / big:.0f} ns per page)")
    kthp, why_thp = _live_thp_timings(big)
    if kthp:
        model_per = (fork_s + cow_s) * 1e9 / big
        print(f"THP fork + COW, ns per 4 KiB page: model {model_per:.0f}, kernel {kthp['thp_fork_cow']:.0f} "
              f"(ratio {model_per / kthp['thp_fork_cow']:.2f}x; {kthp['thp_coverage']:.0%} of the kernel's "
              f"region got THPs)")
    else:
        print(f"(live kernel THP figure unavailable: {why_thp})")
    per_fork, per_cow = thp_model_memory(big)
    print(f"THP model memory: {per_fork:.0f} bytes per mapped page after fork (PMDs shared), "
          f"{per_cow:.0f} after the child COWed every subpage")
    try:
        from .bench_viz import viz_timings
    except ImportError:
        return
    v = viz_timings()
    print(f"drawing: bare matplotlib floor (46-node layered PNG, 80 dpi) {v['floor_ms']:.1f} ms")
    print(f"  one stepper step (3 processes, 8 pages, {v['lecture_nodes']} nodes): {v['step_ms']:.1f} ms warm = {v['step_ratio']:.2f}x floor, "
          f"{v['step_cold_ms']:.1f} ms first draw = {v['step_cold_ratio']:.2f}x (target <= 1.2x)")
    print(f"  {v['big_nodes']}-node graph redraw: {v['big_ms']:.1f} ms (target <= 150 ms)")


if __name__ == "__main__":
    main()
