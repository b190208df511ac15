"""Large folios on the live kernel (mmkit.live + mmkit.live.thp): THP policy
in sysfs that is always restored, folio geometry, PMD mapping, AE of tail
pages, khugepaged detection, migrate(reason=...) and the THP bench.

Tests skip with the reason where the live backend is unavailable or the
kernel has no /sys/kernel/mm/transparent_hugepage.  Every test leaves every
THP sysfs value as it found it (``thp_untouched`` checks all of them).
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mmkit.errors import InvalidArgument
from mmkit.live import LiveKernel, LiveUnsupported, available
from mmkit.live.thp import SYSFS, thp_available, thp_snapshot

OK, WHY = available()
THP_OK, THP_WHY = thp_available() if OK else (False, WHY)
live = pytest.mark.skipif(not OK, reason=WHY)
thp = pytest.mark.skipif(not THP_OK, reason=THP_WHY)
URING_OK, URING_WHY = available("io_uring")
uring = pytest.mark.skipif(not URING_OK, reason=f"needs io_uring: {URING_WHY}")
PMD = 2 << 20
PAGE = 4096
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _differs(before):
    after = thp_snapshot()
    return {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}


@pytest.fixture
def thp_untouched():
    """Every writable THP sysfs value is the same after the test as before it."""
    before = thp_snapshot()
    yield before
    assert _differs(before) == {}


@pytest.fixture
def k(thp_untouched):
    k = LiveKernel()
    yield k
    k.close()


def _other_size(k):
    """An mTHP size other than 2 MiB whose policy we can flip and restore."""
    return "64kB" if "64kB" in k.thp.sizes else k.thp.sizes[0]


def _flip(value):
    return "always" if value != "always" else "never"


def _pmd_thp(k, name="P"):
    p = k.spawn(name)
    k.thp.set("2048kB", "madvise")
    a = p.mmap(512)
    p.madvise(a, 512, "hugepage")
    p.write(a, b"old")
    return p, a


def _gone(pid, wait=5.0):
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            return True
        time.sleep(0.02)
    return False


# -- policy ---------------------------------------------------------------------------
@live
@thp
def test_sizes_and_enabled_are_read_from_sysfs(k):
    """k.thp.sizes lists the anon hugepages-<size> directories (with `enabled`) smallest first, as the model."""
    from mmkit import Kernel
    dirs = sorted(d[len("hugepages-"):] for d in os.listdir(SYSFS)
                  if d.startswith("hugepages-") and os.path.exists(f"{SYSFS}/{d}/enabled"))
    assert sorted(k.thp.sizes) == dirs and "2048kB" in k.thp.sizes
    assert [int(s[:-2]) for s in k.thp.sizes] == sorted(int(s[:-2]) for s in k.thp.sizes)
    text = open(f"{SYSFS}/enabled").read()
    if hasattr(Kernel(era="6.18"), "thp"):
        assert set(k.thp.sizes) <= set(Kernel(era="6.18").thp.sizes)
    assert f"[{k.thp.enabled}]" in text and k.thp.enabled in ("always", "madvise", "never")
    assert k.thp.get("2048kB") in ("always", "inherit", "madvise", "never")


@live
@thp
def test_set_applies_and_close_restores_every_value(thp_untouched):
    """A policy set at start and later is in sysfs while the kernel lives and back as it was after close()."""
    before = thp_untouched
    size = "64kB"
    k = LiveKernel(thp={size: _flip(before[f"hugepages-{size}/enabled"])})
    try:
        assert k.thp.get(size) == _flip(before[f"hugepages-{size}/enabled"])
        k.thp.enabled = _flip(before["enabled"]) if before["enabled"] != "never" else "madvise"
        k.thp.set("2048kB", "never")
        assert k.thp.get("2048kB") == "never"
        assert set(k.thp.changed) == {f"hugepages-{size}/enabled", "enabled", "hugepages-2048kB/enabled"}
        assert _differs(before)
    finally:
        k.close()
    assert _differs(before) == {}


@live
@thp
def test_bad_policy_is_refused_and_nothing_changes(k):
    """Unknown sizes and values raise InvalidArgument before anything is written."""
    with pytest.raises(InvalidArgument):
        k.thp.set("3kB", "always")
    with pytest.raises(InvalidArgument):
        k.thp.set("2048kB", "sometimes")
    with pytest.raises(InvalidArgument):
        k.thp.enabled = "inherit"
    assert k.thp.changed == {}


@live
@thp
def test_constructor_failure_restores_and_leaves_no_process(thp_untouched):
    """LiveKernel(thp=...) with a bad value raises, restores what it had set and stops its fork server."""
    size = "64kB"
    before = thp_untouched
    with pytest.raises(InvalidArgument):
        LiveKernel(thp={size: _flip(before[f"hugepages-{size}/enabled"]), "2048kB": "bogus"})
    assert _differs(before) == {}


@live
@thp
def test_failing_scenario_restores_everything(thp_untouched):
    """A scenario that raises half-way inside `with LiveKernel()` leaves sysfs, processes and temp dir as before."""
    before = thp_untouched
    pids, tmp = [], None
    with pytest.raises(RuntimeError, match="scenario broke"):
        with LiveKernel(thp={"64kB": "always"}) as k:
            tmp = k._state.tmpdir
            p, a = _pmd_thp(k)
            c = p.fork("C")
            c.write(a + PAGE, b"new")
            pids = k.worker_pids
            assert _differs(before)
            raise RuntimeError("scenario broke")
    assert _differs(before) == {}
    assert all(_gone(pid) for pid in pids)
    assert tmp and not os.path.exists(tmp)


def _child(body):
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {REPO!r})
        from mmkit.live import LiveKernel
        k = LiveKernel(thp={{"64kB": "always", "2048kB": "never"}})
        print(k._state.server.pid, k._state.tmpdir, flush=True)
        {body}
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _run_child_and(thp_untouched, body, action):
    before = thp_untouched
    if before.get("hugepages-64kB/enabled") == "always" and before.get("hugepages-2048kB/enabled") == "never":
        pytest.skip("the policy the child sets is already the machine's")
    proc = _child(body)
    try:
        line = proc.stdout.readline().split()
        assert line, proc.stderr.read()
        server, tmp = int(line[0]), line[1]
        assert _differs(before)
        action(proc)
        proc.wait(timeout=20)
        assert _gone(server), proc.stderr.read()
        end = time.monotonic() + 5
        while _differs(before) and time.monotonic() < end:
            time.sleep(0.05)
        assert _differs(before) == {}
        assert not os.path.exists(tmp)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@live
@thp
def test_restored_at_interpreter_exit(thp_untouched):
    """A program that never calls close() still leaves sysfs as it found it (atexit)."""
    def go(proc):
        proc.stdin.write("exit\n")
        proc.stdin.flush()
    _run_child_and(thp_untouched, "sys.stdin.readline(); sys.exit(0)", go)


@live
@thp
def test_restored_on_sigterm(thp_untouched):
    """SIGTERM to a Python holding a LiveKernel restores every THP value before it dies."""
    def term(proc):
        proc.send_signal(signal.SIGTERM)
    _run_child_and(thp_untouched, "time.sleep(60)", term)


@live
@thp
def test_restored_by_fork_server_when_python_is_killed(thp_untouched):
    """SIGKILL to Python: the fork server (PR_SET_PDEATHSIG) writes back the values and removes the temp dir."""
    def kill(proc):
        proc.send_signal(signal.SIGKILL)
    _run_child_and(thp_untouched, "time.sleep(60)", kill)


# -- observation ------------------------------------------------------------------------
@live
@thp
def test_large_mapping_is_pmd_aligned(k):
    """Anonymous private mappings whose length is a multiple of 2 MiB start on a 2 MiB boundary (v6.12+)."""
    p = k.spawn("P")
    p.mmap(3)
    for n in (512, 1024, 512 * 5):
        a = p.mmap(n)
        assert a % PMD == 0
        p.write(a + (n - 1) * PAGE, b"end")         # the whole length is mapped
    assert p.mmap(3) % PAGE == 0


@live
@thp
def test_pmd_thp_first_touch(k):
    """A write fault under MADV_HUGEPAGE maps a 2 MiB THP by PMD: order 9, head at the aligned start, AE, m1."""
    p, a = _pmd_thp(k)
    h, t = k.page(p, a), k.page(p, a + 511 * PAGE)
    assert (h.order, h.nr_pages, h.head, h.pmd_mapped, h.mapcount, h.exclusive) == (9, 512, True, True, 1, True)
    assert (t.order, t.head, t.pmd_mapped, t.mapcount, t.exclusive) == (9, False, True, 1, None)
    assert t.pfn == h.pfn + 511 and h.pfn % 512 == 0
    assert (h.large_mapcount, h.entire_mapcount, h.nr_pages_mapped) == (1, 1, 0)
    for f in ("folio_pincount", "maybe_mapped_shared", "mm_ids", "refcount", "pincount"):
        assert getattr(h, f) is None


@live
@thp
def test_nohugepage_gives_small_pages(k):
    """MADV_NOHUGEPAGE before the fault: order-0 pages, no PMD."""
    p = k.spawn("P")
    a = p.mmap(512)
    p.madvise(a, 512, "nohugepage")
    p.write(a, b"x")
    i = k.page(p, a)
    assert (i.order, i.nr_pages, i.head, i.pmd_mapped) == (0, 1, False, False)


@live
@thp
def test_mthp_64k_is_order_4_pte_mapped(k):
    """hugepages-64kB=always: a write fault maps a 64 KiB folio (order 4) by 16 PTEs."""
    k.thp.set("64kB", "always")
    k.thp.set("2048kB", "never")
    p = k.spawn("P")
    a = p.mmap(512)
    p.write(a, b"x")
    infos = [k.page(p, a + i * PAGE) for i in range(17)]
    assert [i.order for i in infos[:16]] == [4] * 16 and infos[0].head and not any(i.head for i in infos[1:16])
    assert not any(i.pmd_mapped for i in infos[:16]) and infos[0].exclusive
    assert [i.pfn - infos[0].pfn for i in infos[:16]] == list(range(16)) and not infos[16].present


@live
@thp
def test_fork_and_child_cow_of_pmd_thp(k):
    """fork shares the PMD (m2 everywhere, AE clear); the child's write splits only its PMD and copies 4 KiB."""
    p, a = _pmd_thp(k)
    c = p.fork("C")
    for proc in (p, c):
        for i in (0, 1, 300):
            info = k.page(proc, a + i * PAGE)
            assert (info.order, info.pmd_mapped, info.mapcount, info.exclusive) == (9, True, 2, None if i else False)
    c.write(a + PAGE, b"new")
    pc, cc, c0 = k.page(p, a + PAGE), k.page(c, a + PAGE), k.page(c, a)
    assert (cc.order, cc.exclusive, cc.mapcount) == (0, True, 1)
    assert pc.pmd_mapped and pc.mapcount == 1 and pc.order == 9
    assert not c0.pmd_mapped and c0.pfn == k.page(p, a).pfn and c0.mapcount == 2


@live
@thp
def test_tail_ae_is_unknown_until_probed(k):
    """On a PTE-mapped THP the tails' AE is None (bit 34 is the head's); the mprotect probe measures it."""
    p, a = _pmd_thp(k)
    p.mprotect(a + PAGE, 1, "r")
    p.mprotect(a + PAGE, 1, "rw")
    p.madvise(a, 512, "nohugepage")
    t = k.page(p, a + 2 * PAGE)
    assert not t.pmd_mapped and t.order == 9 and t.exclusive is None and k.page(p, a).exclusive is True
    assert k.probe_exclusive(p, a + 2 * PAGE, 2) == [True, True]
    c = p.fork("C")
    c.write(a + 3 * PAGE, b"child")
    assert k.probe_exclusive(p, a + 2 * PAGE, 1) == [False]
    assert k.probe_exclusive(c, a + 3 * PAGE, 1) == [True]
    q, b = _pmd_thp(k, "Q")
    assert k.probe_exclusive(q, b + PAGE, 1) == [None] and k.page(q, b).pmd_mapped   # PMD tails: untouched


@live
@thp
def test_khugepaged_counter_is_readable(k):
    """khugepaged's pages_collapsed counter reads as a non-negative int."""
    n = k.khugepaged_collapsed()
    assert isinstance(n, int) and n >= 0


@live
@thp
def test_madv_collapse_makes_one_pmd_thp(k):
    """MADV_COLLAPSE turns 512 small pages into one PMD-mapped THP with new PFNs."""
    k.thp.set("2048kB", "madvise")
    p = k.spawn("P")
    a = p.mmap(512)
    p.madvise(a, 512, "nohugepage")
    for i in range(512):
        p.write(a + i * PAGE, b"s")
    old = k.page(p, a).pfn
    p.madvise(a, 512, "hugepage")
    p.madvise(a, 512, "collapse")
    i = k.page(p, a)
    assert (i.order, i.pmd_mapped, i.head) == (9, True, True) and i.pfn != old
    assert p.read(a + 100 * PAGE, 1) == b"s"


# -- migrate(reason=...) ---------------------------------------------------------------------
@live
def test_migrate_performs_compaction_and_refuses_the_rest(k):
    """reason='compaction' runs; move_pages and offline raise LiveUnsupported saying why; unknown is invalid."""
    p = k.spawn("P")
    a = p.mmap(1)
    p.write(a, b"x")
    res = k.migrate(p, a, 1, reason="compaction")
    assert res.migrated + res.failed == 1 and res.deterministic is False
    for reason in ("move_pages_all", "move_pages", "offline"):
        with pytest.raises(LiveUnsupported, match=reason):
            k.migrate(p, a, 1, reason=reason)
    with pytest.raises(InvalidArgument):
        k.migrate(p, a, 1, reason="sideways")
    assert k.migrate(p, a, 1).deterministic is False           # the default is compaction


@live
@uring
@thp
def test_compaction_never_moves_a_thp_with_a_pinned_subpage(k):
    """Compaction leaves a THP whose subpage 1 is pinned by io_uring where it is."""
    p, a = _pmd_thp(k)
    pin = p.pin(a + PAGE, 1, write=True, longterm=True)
    before = k.page(p, a).pfn
    assert k.migrate(p, a, 2, reason="compaction").migrated == 0
    assert k.page(p, a).pfn == before
    pin.unpin()


# -- scenarios, live against live ------------------------------------------------------------
@live
@uring
@thp
def test_large_scenarios_are_deterministic_live(thp_untouched):
    """Every large-folio scenario gives the same observations on two live runs, and every cow.c case passes."""
    from mmkit.scenarios.cow_large import LARGE_SCENARIOS, run_large_conformance
    rep = run_large_conformance(LARGE_SCENARIOS, model=LiveKernel, live=LiveKernel, retries=1, replay=False)
    assert rep.ok, "\n".join(rep.failures)
    for c in rep.comparisons:
        if c.name.startswith("cow.c"):
            assert c.live[-1].outcome is True, c.table()
    counts = rep.counts()
    assert all(counts[f][0] > 0 for f in ("order", "head", "pmd_mapped", "mapcount", "exclusive", "identity"))


# -- bench -------------------------------------------------------------------------------------
@live
@thp
def test_thp_bench_reports_fork_and_cow_per_page(thp_untouched):
    """live_thp_timings() reports fork + COW per 4 KiB page of a THP-backed region, and how much got THPs."""
    from mmkit.live.bench import live_thp_timings
    if thp_untouched["hugepages-2048kB/enabled"] == "never" or (
            thp_untouched["hugepages-2048kB/enabled"] == "inherit" and thp_untouched["enabled"] == "never"):
        pytest.skip("2 MiB THPs are disabled on this machine")
    r = live_thp_timings(npages=2048, reps=1)
    assert set(r) == {"thp_fork_cow", "thp_fork", "thp_cow_fault", "thp_coverage"}
    assert r["thp_fork_cow"] > 0 and r["thp_fork_cow"] == pytest.approx(r["thp_fork"] + r["thp_cow_fault"])
    assert 0 < r["thp_coverage"] <= 1.0
    with pytest.raises(ValueError):
        live_thp_timings(npages=100)


# -- khugepaged --------------------------------------------------------------------------------
def _pte_mapped_thp(k, name="P"):
    p, a = _pmd_thp(k, name)
    p.mprotect(a + PAGE, 1, "r")
    p.mprotect(a + PAGE, 1, "rw")
    return p, a


def _wait(cond, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@live
@thp
def test_khugepaged_collapse_is_detected_by_the_runner(thp_untouched):
    """A step during which khugepaged collapses a PTE-mapped THP is flagged with the pages it collapsed."""
    from mmkit.scenario import Scenario
    from mmkit.scenarios.cow_large import run_large

    def wake_khugepaged(k, s):
        k.thp.write("khugepaged/scan_sleep_millisecs", "10")
        assert _wait(lambda: k.page(s.p, s.a).pmd_mapped, 15), "khugepaged did not collapse within 15 s"

    sc = Scenario("khugepaged", watch=[("p", "p", "a")])
    sc.add("PTE-map a THP", "", lambda k, s: setattr(s, "pa", _pte_mapped_thp(k)) or
           (setattr(s, "p", s.pa[0]), setattr(s, "a", s.pa[1])))
    sc.add("khugepaged", "", wake_khugepaged)
    with LiveKernel() as k:
        rows, _ = run_large(sc, k)
    assert not rows[0].cells["p"]["pmd_mapped"] and rows[1].cells["p"]["pmd_mapped"]
    assert rows[1].collapsed >= 1 and rows[1].cells["p"]["pfn"] != rows[0].cells["p"]["pfn"]


@live
@thp
def test_nohugepage_keeps_khugepaged_off_a_pte_mapped_thp(k):
    """MADV_NOHUGEPAGE after the split (the 'pte' preparation) keeps khugepaged from collapsing the region."""
    p, a = _pte_mapped_thp(k)
    p.madvise(a, 512, "nohugepage")
    q, b = _pte_mapped_thp(k, "Q")                  # the control: still VM_HUGEPAGE
    before = k.page(p, a).pfn
    k.thp.write("khugepaged/scan_sleep_millisecs", "10")
    assert _wait(lambda: k.page(q, b).pmd_mapped, 15), "khugepaged did not collapse the control within 15 s"
    scans = int(k.thp.read("khugepaged/full_scans"))
    assert _wait(lambda: int(k.thp.read("khugepaged/full_scans")) >= scans + 2, 15), "khugepaged stopped scanning"
    info = k.page(p, a)
    assert info.pfn == before and not info.pmd_mapped and info.order == 9


@live
@thp
def test_pmd_mapping_falls_back_to_smaps_without_pagemap_scan(k, monkeypatch):
    """Where PAGEMAP_SCAN is missing (before v6.7), smaps AnonHugePages 0 kB means PTE-mapped, else unknown."""
    import errno
    from mmkit.live import thp as thp_mod

    def no_scan(*a, **kw):
        raise OSError(errno.ENOTTY, "no PAGEMAP_SCAN")
    p, a = _pmd_thp(k)
    q = k.spawn("Q")
    b = q.mmap(512)
    q.madvise(b, 512, "nohugepage")
    q.write(b, b"x")
    monkeypatch.setattr(thp_mod.fcntl, "ioctl", no_scan)
    assert thp_mod.pmd_mapped(p.pid, a) is None          # AnonHugePages 2048 kB: cannot say which page
    assert thp_mod.pmd_mapped(q.pid, b) is False


def _children():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


@live
@uring
@thp
def test_large_scenarios_leave_nothing_behind(thp_untouched):
    """After the large-folio conformance no worker, temp dir or fd of ours is left, and sysfs is as before."""
    from mmkit.scenarios.cow_large import LARGE_TOPICS, run_large_conformance
    fds = set(os.listdir("/proc/self/fd"))
    tmps = {d for d in os.listdir("/tmp") if d.startswith("mmkit-live-")}
    kids = set(_children())
    run_large_conformance(LARGE_TOPICS, model=LiveKernel, live=LiveKernel, retries=0, replay=False)
    assert _wait(lambda: set(_children()) <= kids, 5), set(_children()) - kids
    assert {d for d in os.listdir("/tmp") if d.startswith("mmkit-live-")} <= tmps
    assert set(os.listdir("/proc/self/fd")) <= fds | {str(n) for n in range(3)}


@live
@thp
def test_folio_mapcounts_counted_in_the_workers_page_tables(k):
    """large/entire mapcount and pages mapped follow fork, a child's COW and a partial munmap, as the kernel counts."""
    p, a = _pmd_thp(k)
    c = p.fork("C")

    def counts(proc, i=1):
        info = k.page(proc, a + i * PAGE)
        return info.large_mapcount, info.entire_mapcount, info.nr_pages_mapped
    assert counts(p) == counts(c) == (2, 2, 0)              # two PMDs
    c.write(a + PAGE, b"new")                               # child: PMD split, page 1 copied
    assert counts(p) == (512, 1, 511) and counts(c) == (None, None, None)
    p.munmap(a + 256 * PAGE, 256)                           # parent: PMD split, upper half gone
    assert counts(p) == (767, 0, 512)
    c.exit()
    assert counts(p) == (256, 0, 256)


@live
@thp
def test_shrink_deferred_split_splits_and_maps_zero_filled_pages_to_the_zero_page(k):
    """k.shrink_deferred_split() (drop_caches=2) splits a partially unmapped THP into small folios; a page
    never written (all zeros) becomes the shared zero page (v6.12, b1f202060afe, try_to_map_unused_to_zeropage())."""
    p, a = _pmd_thp(k)                       # page 0 written, the rest zero-filled
    p.write(a + 2 * PAGE, b"two")
    p.munmap(a + 256 * PAGE, 256)
    assert k.page(p, a + PAGE).order == 9
    split, _queued = k.shrink_deferred_split()
    written, zero = k.page(p, a + 2 * PAGE), k.page(p, a + PAGE)
    assert split >= 1 and (written.order, written.head, written.mapcount, written.anon) == (0, False, 1, True)
    assert zero.zero_page and p.read(a + PAGE, 1) == b"\0" and p.read(a + 2 * PAGE, 3) == b"two"


@live
@thp
def test_vmsplice_of_a_whole_thp_raises_pipe_max_size_for_a_while(thp_untouched):
    """vmsplice of 2 MiB works (pipe-max-size raised if needed), the pipe returns the data, and the limit
    is back as before once the LiveKernel closes."""
    path = "/proc/sys/fs/pipe-max-size"
    before = open(path).read()
    with LiveKernel() as k:
        p, a = _pmd_thp(k)
        pipe = p.vmsplice(a, PMD)
        assert pipe.read(3) == b"old"
    assert open(path).read() == before
