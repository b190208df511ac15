"""The live backend: the model's API on the running kernel (mmkit.live).

Tests that need the live kernel skip with the reason from
``mmkit.live.available()``; the facts they check are the deterministic ones
of /work/shared/reference/live-kernel.md (workers are pinned to one CPU).
"""

import gc
import os
import signal
import time

import pytest

from mmkit.errors import InvalidArgument, KernelError, MMError, SIGBUS, SIGSEGV
from mmkit.live import (LiveKernel, LiveUnavailable, LiveUnsupported, LiveWorkerError, available)
from mmkit.live import availability
from mmkit.scenario import Scenario

OK, WHY = available()
live = pytest.mark.skipif(not OK, reason=WHY)
URING_OK, URING_WHY = available("io_uring")
#: long-term writable pins are io_uring fixed buffers: only these tests need io_uring
uring = pytest.mark.skipif(not URING_OK, reason=f"needs io_uring: {URING_WHY}")
PAGE = 4096


@pytest.fixture
def k():
    if not OK:
        pytest.skip(WHY)
    with LiveKernel(timeout=10) as kern:
        yield kern


def retry(fn, times=3):
    """Run a check up to ``times`` times: a fault count is 1 instead of 0 in
    about one run in a thousand on a shared VM (live-kernel.md, scenario 4)."""
    for i in range(times):
        try:
            return fn()
        except AssertionError:
            if i == times - 1:
                raise


def setup_written(k, data=b"old data"):
    p = k.spawn("parent")
    a = p.mmap(1)
    p.write(a, data)
    return p, a


def _children(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def _gone(pid, wait=2.0):
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.01)
    return False


def _fds():
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return out


def _everything_released(pids, tmpdir, fds_before):
    assert all(_gone(pid) for pid in pids), [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert not set(pids) & set(_children(os.getpid()))
    assert not os.path.exists(tmpdir)
    leaked = {fd: t for fd, t in _fds().items() if fd not in fds_before}
    # the listdir of /proc/self/fd itself may show up once
    assert all(t.startswith("/proc/") for t in leaked.values()), leaked


# -- availability -------------------------------------------------------------

def test_available_returns_bool_and_reason():
    """available() answers (bool, non-empty reason) and never raises."""
    ok, why = available()
    assert isinstance(ok, bool) and isinstance(why, str) and why


def test_unavailable_raises_one_clear_error(monkeypatch):
    """Without the live backend, LiveKernel() raises LiveUnavailable carrying the reason."""
    monkeypatch.setattr(availability, "_results", {None: (False, "not root: run as root in a VM")})
    with pytest.raises(LiveUnavailable, match="not root") as e:
        LiveKernel()
    assert isinstance(e.value, MMError)


# -- first touch, fork, COW ---------------------------------------------------------

@live
def test_read_fault_maps_zero_page_and_write_allocates(k):
    """A read fault maps the shared zero page; a write allocates an exclusive writable anon page."""
    p = k.spawn("p")
    a = p.mmap(2)
    assert not k.page(p, a).present
    assert p.read(a, 4) == b"\0" * 4 and p.last_faults == [1]
    z = k.page(p, a)
    assert z.zero_page and z.mapcount == 0 and not z.anon and z.writable is False
    p.write(a + PAGE, b"x")
    n = k.page(p, a + PAGE)
    assert (n.anon, n.exclusive, n.mapcount, n.writable) == (True, True, 1, True)
    assert n.refcount is None and n.pincount is None and n.maybe_pinned is None


@live
def test_fork_shares_page_and_clears_exclusive(k):
    """After fork both processes map the same PFN, mapcount 2, not exclusive."""
    p, a = setup_written(k)
    c = p.fork("child")
    pp, cp = k.page(p, a), k.page(c, a)
    assert pp.pfn == cp.pfn and pp.mapcount == 2
    assert not pp.exclusive and not cp.exclusive
    assert c.read(a, 8) == b"old data"


@live
def test_cow_child_writes_then_parent_reuses(k):
    """The child's write copies; the parent's later write reuses its page in place (one fault)."""
    def run():
        p, a = setup_written(k)
        c = p.fork("child")
        orig = k.page(p, a).pfn
        c.write(a, b"NEW DATA")
        assert k.page(c, a).pfn != orig and k.page(c, a).exclusive
        assert k.page(p, a).pfn == orig and k.page(p, a).mapcount == 1 and not k.page(p, a).exclusive
        assert p.read(a, 8) == b"old data"
        p.write(a, b"second")
        assert p.last_faults == [1]
        assert k.page(p, a).pfn == orig and k.page(p, a).exclusive
    retry(run)


@live
def test_cow_after_child_exit_reuses(k):
    """After the child exits the parent's write reuses the page (1 fault), the next store takes none."""
    def run():
        p, a = setup_written(k)
        c = p.fork("child")
        orig = k.page(p, a).pfn
        c.exit()
        assert not c.alive
        info = k.page(p, a)
        assert info.mapcount == 1 and not info.exclusive
        p.write(a, b"NEW")
        assert p.last_faults == [1] and k.page(p, a).pfn == orig and k.page(p, a).exclusive
        assert p.store_faults(a) == 0
    retry(run)


@live
def test_parent_write_while_shared_copies(k):
    """The parent writing a page the child still maps copies it; the child keeps the original."""
    p, a = setup_written(k)
    c = p.fork("child")
    orig = k.page(c, a).pfn
    p.write(a, b"NEW DATA")
    assert k.page(p, a).pfn != orig and k.page(p, a).exclusive
    assert k.page(c, a).pfn == orig and c.read(a, 8) == b"old data"


# -- GUP -------------------------------------------------------------------------

@live
def test_vmsplice_unmap_in_child_parent_copies(k):
    """CVE-2020-29374 is fixed: the parent copies and the pipe returns the old data."""
    p, a = setup_written(k)
    c = p.fork("child")
    orig = k.page(p, a).pfn
    pipe = c.vmsplice(a, 8)
    c.munmap(a, 1)
    assert k.page(p, a).mapcount == 1
    p.write(a, b"NEW DATA")
    assert k.page(p, a).pfn != orig
    assert pipe.read(8) == b"old data"
    assert not pipe.active


@live
@uring
def test_iouring_pin_before_fork_copies_for_child(k):
    """A page pinned before fork stays the parent's (writable, no fault); the child gets a copy."""
    def run():
        p, a = setup_written(k)
        pin = p.pin(a, 1, write=True, longterm=True)
        orig = k.page(p, a).pfn
        assert pin.pfns == [orig]
        c = p.fork("child")
        assert k.page(c, a).pfn != orig and k.page(c, a).exclusive and k.page(p, a).pfn == orig
        p.write(a, b"NEW DATA")
        assert p.last_faults == [0]
        assert pin.read(8) == b"NEW DATA" and c.read(a, 8) == b"old data"
        pin.unpin()
    retry(run)


@live
@uring
def test_iouring_pin_after_fork_breaks_cow(k):
    """A R/W pin of a shared page breaks COW in the parent: new exclusive PFN, the child keeps the old."""
    p, a = setup_written(k)
    c = p.fork("child")
    orig = k.page(p, a).pfn
    pin = p.pin(a, 1, write=True, longterm=True)
    assert k.page(p, a).pfn != orig and k.page(p, a).exclusive
    assert k.page(c, a).pfn == orig
    pin.write(b"dma")
    assert p.read(a, 3) == b"dma" and c.read(a, 3) == b"old"
    pin.unpin()


@live
def test_odirect_ro_pin_unshares_readonly(k):
    """An O_DIRECT write from a shared page unshares it: new exclusive PFN mapped read-only."""
    def run():
        p, a = setup_written(k)
        c = p.fork("child")
        orig = k.page(p, a).pfn
        pin = p.pin(a, 1, write=False, longterm=False)
        new = k.page(p, a)
        assert new.pfn != orig and new.exclusive and k.page(c, a).pfn == orig
        assert pin.read(8) == b"old data" and pin.transient
        pin.unpin()
        p.write(a, b"NEW")
        assert p.last_faults == [1] and k.page(p, a).pfn == new.pfn
    retry(run)


@live
def test_odirect_ro_pin_after_exit_marks_exclusive_without_copy(k):
    """The unshare of a no-longer-shared page copies nothing: same PFN, now exclusive."""
    p, a = setup_written(k)
    c = p.fork("child")
    orig = k.page(p, a).pfn
    c.exit()
    p.pin(a, 1, write=False, longterm=False).unpin()
    assert k.page(p, a).pfn == orig and k.page(p, a).exclusive


@live
def test_odirect_rw_pin_keeps_content(k):
    """A short-term R/W pin (O_DIRECT read) breaks COW and leaves the page's data as it was."""
    p, a = setup_written(k)
    c = p.fork("child")
    orig = k.page(p, a).pfn
    pin = p.pin(a, 1, write=True, longterm=False)
    assert k.page(p, a).pfn != orig and p.read(a, 8) == b"old data" and pin.read(8) == b"old data"
    with pytest.raises(LiveUnsupported):
        pin.write(b"x")
    assert c.read(a, 8) == b"old data"


@live
def test_unsupported_pins_raise_enosys(k):
    """A long-term R/O pin and FOLL_GET|FOLL_WRITE have no user-space form: ENOSYS, nothing changes."""
    p, a = setup_written(k)
    before = k.page(p, a)
    with pytest.raises(LiveUnsupported) as e:
        p.pin(a, 1, write=False, longterm=True)
    assert e.value.errno == "ENOSYS" and isinstance(e.value, KernelError)
    with pytest.raises(LiveUnsupported):
        p.get_user_pages(a, 1, write=True)
    assert k.page(p, a) == before


@live
def test_get_user_pages_reference_reads_without_consuming(k):
    """A get_user_pages() reference reads the held page repeatedly and sees later writes to it."""
    p, a = setup_written(k)
    ref = p.get_user_pages(a, 1)
    assert ref.read(8) == b"old data" and ref.read(3, offset=4) == b"dat"
    assert k.page(p, a).exclusive           # FOLL_GET never unshares
    p.write(a, b"NEW")
    assert ref.read(3) == b"NEW"
    ref.put()
    with pytest.raises(InvalidArgument):
        ref.read(1)


@live
@uring
def test_pin_release_twice_and_readonly_write_are_invalid(k):
    """Unpinning twice and a device write through a R/O pin raise InvalidArgument, as in the model."""
    p, a = setup_written(k)
    pin = p.pin(a, 1, write=True, longterm=True)
    pin.unpin()
    with pytest.raises(InvalidArgument):
        pin.unpin()
    ro = p.pin(a, 1, write=False, longterm=False)
    with pytest.raises(InvalidArgument):
        ro.write(b"x")


@live
@uring
def test_pin_survives_process_exit(k):
    """An io_uring pin outlives its process: the device still reads the page."""
    p, a = setup_written(k)
    pin = p.pin(a, 1, write=True, longterm=True)
    p.exit()
    assert pin.read(8) == b"old data"
    pin.unpin()
    with pytest.raises(InvalidArgument):
        p.read(a, 1)


@live
@uring
def test_ext4_shared_longterm_pin_is_refused(k):
    """A long-term writable pin of a shared ext4 mapping fails with EFAULT."""
    f = k.open("data", 1)
    p = k.spawn("p")
    m = p.mmap(1, file=f, shared=True)
    p.write(m, b"x")
    with pytest.raises(KernelError) as e:
        p.pin(m, 1, write=True, longterm=True)
    assert e.value.errno == "EFAULT"


# -- files, truncation, signals ------------------------------------------------------

@live
def test_file_pages_shared_and_private_cow(k):
    """A shared file page is one page-cache page in both processes; a private write COWs to anon."""
    f = k.open("memfd", 1, shmem=True)
    f.write(0, b"file")
    p = k.spawn("p")
    c = k.spawn("q")
    m1 = p.mmap(1, file=f, shared=True)
    m2 = c.mmap(1, file=f, shared=True)
    assert p.read(m1, 4) == b"file" and c.read(m2, 4) == b"file"
    assert k.page(p, m1).pfn == k.page(c, m2).pfn and k.page(p, m1).in_page_cache
    priv = p.mmap(1, file=f, shared=False)
    p.write(priv, b"PRIV")
    info = k.page(p, priv)
    assert info.anon and info.exclusive and not info.in_page_cache
    assert f.read(0, 4) == b"file" and k.open("memfd") is f


@live
@uring
def test_truncate_gives_sigbus_and_pin_keeps_orphan(k):
    """After truncation an access gives SIGBUS, the worker survives, and the pin still reads the old data."""
    f = k.open("memfd", 1, shmem=True)
    f.write(0, b"old data")
    p = k.spawn("p")
    m = p.mmap(1, file=f, shared=True)
    p.write(m, b"NEW DATA")
    pin = p.pin(m, 1, write=True, longterm=True)
    f.truncate(0)
    with pytest.raises(SIGBUS) as e:
        p.read(m, 1)
    assert e.value.addr == m
    assert pin.read(8) == b"NEW DATA"
    f.truncate(1)
    assert p.read(m, 4) == b"\0" * 4 and pin.read(8) == b"NEW DATA"
    pin.unpin()


@live
def test_private_cow_copy_is_zapped_by_truncate(k):
    """Truncation zaps even a private COWed copy: the next access is SIGBUS."""
    f = k.open("data", 1)
    f.write(0, b"old")
    p = k.spawn("p")
    m = p.mmap(1, file=f, shared=False)
    p.write(m, b"NEW")
    assert k.page(p, m).anon
    f.truncate(0)
    with pytest.raises(SIGBUS):
        p.write(m, b"x")


@live
def test_sigsegv_is_raised_and_worker_survives(k):
    """SIGSEGV (no VMA; write to a read-only VMA) reaches the caller and the worker lives on."""
    p = k.spawn("p")
    a = p.mmap(1, prot="r")
    with pytest.raises(SIGSEGV):
        p.write(a, b"x")
    with pytest.raises(SIGSEGV):
        p.read(0x1000, 1)
    assert p.alive and p.read(a, 1) == b"\0"
    p.mprotect(a, 1, "rw")
    p.write(a, b"x")
    assert p.read(a, 1) == b"x"


@live
def test_madvise_dontfork_and_wipeonfork(k):
    """DONTFORK leaves the child no VMA (SIGSEGV); WIPEONFORK gives it zeros; the parent stays exclusive."""
    p, a = setup_written(k)
    b = p.mmap(1)
    p.write(b, b"old data")
    p.madvise(a, 1, "dontfork")
    p.madvise(b, 1, "wipeonfork")
    c = p.fork("child")
    assert k.page(p, a).exclusive and k.page(p, b).exclusive
    assert c.read(b, 4) == b"\0" * 4 and k.page(c, b).zero_page
    with pytest.raises(SIGSEGV):
        c.read(a, 4)


@live
def test_kernel_errors_carry_errno_names(k):
    """A failing system call becomes KernelError with its errno name (mprotect on a hole: ENOMEM)."""
    p = k.spawn("p")
    a = p.mmap(2)
    p.munmap(a + PAGE, 1)
    with pytest.raises(KernelError) as e:
        p.mprotect(a, 2, "r")
    assert e.value.errno == "ENOMEM"
    with pytest.raises(InvalidArgument):
        p.mmap(1, prot="wx")


@live
@uring
def test_migrate_reports_honestly_and_pinned_page_stays(k):
    """migrate() reports per page, is flagged non-deterministic, and never moves a pinned page."""
    p, a = setup_written(k)
    pin = p.pin(a, 1, write=True, longterm=True)
    before = k.page(p, a).pfn
    r = k.migrate(p, a, 1)
    assert r.deterministic is False and r.migrated + r.failed == 1
    assert r.migrated == 0 and k.page(p, a).pfn == before and a in r.reasons
    pin.unpin()


# -- the scenario API ----------------------------------------------------------------

@live
def test_scenario_runs_on_live_kernel(k):
    """A Scenario written for the model runs unchanged on LiveKernel, signals becoming outcomes."""
    sc = Scenario("t", "fork then fault", watch=[("parent", "p", "a"), ("child", "c", "a")])
    sc.add("map", "", lambda k, s: (setattr(s, "p", k.spawn("parent")), setattr(s, "a", s.p.mmap(1)),
                                    s.p.write(s.a, b"x"))[-1])
    sc.add("fork", "", lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("bad", "", lambda k, s: s.c.read(0x1000, 1))
    res = sc.run(k)
    assert [r.pages["parent"].mapcount for r in res] == [1, 2, 2]
    assert res[2].outcome == "SIGSEGV" and res[0].pages["child"] is None


# -- lifetime: nothing outlives the kernel -----------------------------------------------

def _busy_kernel(k):
    p, a = setup_written(k)
    c = p.fork("child")
    p.pin(a, 1, write=True, longterm=True)
    c.vmsplice(a, 8)
    c.get_user_pages(a, 1)
    f = k.open("data", 2)
    c.mmap(2, file=f, shared=True)
    k.open("memfd", 1, shmem=True)
    return k.worker_pids, k._state.tmpdir


@live
@uring
def test_close_releases_workers_fds_and_tempdir():
    """After close() no worker, fd, io_uring ring or temp dir is left."""
    fds = _fds()
    k = LiveKernel()
    pids, tmpdir = _busy_kernel(k)
    assert len(pids) == 3 and all(os.path.exists(f"/proc/{x}") for x in pids)
    k.close()
    _everything_released(pids, tmpdir, fds)
    with pytest.raises(InvalidArgument):
        k.spawn("late")


@live
@uring
def test_failing_step_inside_with_block_releases_everything():
    """An exception in the middle of a with-block still releases everything."""
    fds = _fds()
    with pytest.raises(ZeroDivisionError):
        with LiveKernel() as k:
            pids, tmpdir = _busy_kernel(k)
            1 / 0
    _everything_released(pids, tmpdir, fds)


@live
@uring
def test_garbage_collection_releases_everything():
    """Dropping the last reference to a LiveKernel (and its processes) releases everything."""
    fds = _fds()
    k = LiveKernel()
    pids, tmpdir = _busy_kernel(k)
    del k
    gc.collect()
    _everything_released(pids, tmpdir, fds)


@live
def test_unanswered_request_times_out_and_kills_worker():
    """A worker that does not answer within the timeout is killed and the call raises LiveWorkerError."""
    with LiveKernel(timeout=0.5) as k:
        p = k.spawn("p")
        a = p.mmap(1)
        os.kill(p.pid, 19)                  # SIGSTOP: it can no longer answer
        t = time.monotonic()
        with pytest.raises(LiveWorkerError):
            p.read(a, 1)
        assert time.monotonic() - t < 3
        assert _gone(p.pid) and not p.alive
        q = k.spawn("q")                    # the kernel object itself still works
        assert q.read(q.mmap(1), 1) == b"\0"


@live
def test_interrupt_during_request_kills_worker_and_close_releases():
    """A KeyboardInterrupt in the middle of a request kills that worker; close() releases the rest."""
    fds = _fds()
    k = LiveKernel(timeout=10)
    p = k.spawn("p")
    a = p.mmap(1)
    pids, tmpdir = k.worker_pids, k._state.tmpdir
    os.kill(p.pid, signal.SIGSTOP)

    def interrupt(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            p.read(a, 1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert _gone(p.pid) and not p.alive
    k.close()
    _everything_released(pids, tmpdir, fds)


@live
def test_live_timings_returns_ns_per_page():
    """live_timings() measures the four costs on the real kernel (positive ns per page)."""
    from mmkit.live.bench import live_timings
    t = live_timings(npages=2048, reps=1)
    assert set(t) == {"fork", "first_touch", "cow_fault", "reuse_fault"}
    assert all(v > 0 for v in t.values())


def test_without_io_uring_only_longterm_writable_pins_are_unsupported(k, monkeypatch):
    """Without io_uring a long-term writable pin raises LiveUnsupported, and every other verb still runs."""
    from mmkit.live import LiveUnsupported
    monkeypatch.setitem(availability._results, "io_uring", (False, "io_uring is disabled (test)"))
    p, a = setup_written(k)
    with pytest.raises(LiveUnsupported, match="io_uring is disabled"):
        p.pin(a, 1, write=True, longterm=True)
    c = p.fork("child")
    assert k.page(c, a).mapcount == 2
    c.vmsplice(a, 8).read(8)
