"""Random operation sequences keep every invariant, and (6.2+) the COW security property.

A Hypothesis state machine drives processes that fork, exit, write, read,
mprotect, MADV_DONTNEED, munmap, vmsplice, pin, unpin and migrate one
shared anonymous region, plus a file mapped shared and private that gets
truncated.  A shadow model records what each process must see: every write
is tagged with its writer, so a process (or its pipe) reading another
process's post-fork write is a leak, and a long-term or writable pin that
disagrees with its owner's memory is stale.
"""

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

from mmkit import Kernel, KernelError, Signal

PAGE = 4096
NPAGES = 3
TAG = 8


class MMMachine(RuleBasedStateMachine):
    ERA = "6.18"
    SECURITY = True

    procs = Bundle("procs")
    pins = Bundle("pins")
    pipes = Bundle("pipes")

    def __init__(self):
        super().__init__()
        self.k = Kernel(era=self.ERA)
        self.counter = 0
        self.shadow = {}      # pid -> {page: bytes}: what the process must read
        self.history = {}     # pid -> {page: set of bytes it ever held there}
        self.mapped = {}      # pid -> set of mapped pages
        self.pin_info = {}    # pin id -> [owner, page, coherent]
        self.alive = 0

    # -- set-up ----------------------------------------------------------------
    @rule(target=procs)
    @precondition(lambda self: self.alive == 0 and not self.shadow)
    def start(self):
        p = self.k.spawn("root")
        self.a = p.mmap(NPAGES)
        self.f = self.k.open("file", NPAGES)
        self.fs = p.mmap(NPAGES, file=self.f, shared=True)
        self.fp = p.mmap(NPAGES, file=self.f)
        self.shadow[p.pid] = {i: bytes(TAG) for i in range(NPAGES)}
        self.history[p.pid] = {i: {bytes(TAG)} for i in range(NPAGES)}
        self.mapped[p.pid] = set(range(NPAGES))
        self.alive = 1
        return p

    def _tag(self, pid):
        self.counter += 1
        return f"{pid}:{self.counter}".encode().ljust(TAG, b".")[:TAG]

    def _addr(self, page):
        return self.a + page * PAGE

    # -- process life ---------------------------------------------------------------
    @rule(target=procs, p=procs)
    @precondition(lambda self: 0 < self.alive < 5)
    def fork(self, p):
        if not p.alive:
            return p
        c = p.fork()
        self.shadow[c.pid] = dict(self.shadow[p.pid])
        self.history[c.pid] = {pg: set(v) for pg, v in self.history[p.pid].items()}
        self.mapped[c.pid] = set(self.mapped[p.pid])
        self.alive += 1
        return c

    @rule(p=procs)
    @precondition(lambda self: self.alive > 1)
    def exit(self, p):
        if p.alive:
            p.exit()
            self.alive -= 1
            for info in self.pin_info.values():
                if info[0] is p:
                    info[2] = False

    # -- memory access ----------------------------------------------------------------
    @rule(p=procs, page=st.integers(0, NPAGES - 1))
    def write(self, p, page):
        if not p.alive or page not in self.mapped[p.pid]:
            return
        tag = self._tag(p.pid)
        try:
            p.write(self._addr(page), tag)
        except Signal:
            assert self.k.page(p, self._addr(page)).present is not None   # read-only: SIGSEGV, state kept
            return
        self.shadow[p.pid][page] = tag
        self.history[p.pid][page].add(tag)

    @rule(p=procs, page=st.integers(0, NPAGES - 1))
    def read(self, p, page):
        if not p.alive or page not in self.mapped[p.pid]:
            return
        got = p.read(self._addr(page), TAG)
        if self.SECURITY:
            assert got == self.shadow[p.pid][page], f"{p} read {got!r}, expected {self.shadow[p.pid][page]!r}"

    @rule(p=procs, page=st.integers(0, NPAGES - 1))
    def mprotect_round_trip(self, p, page):
        if p.alive and page in self.mapped[p.pid]:
            p.mprotect(self._addr(page), 1, "r")
            p.mprotect(self._addr(page), 1, "rw")

    @rule(p=procs, page=st.integers(0, NPAGES - 1))
    def dontneed(self, p, page):
        if p.alive and page in self.mapped[p.pid]:
            p.madvise(self._addr(page), 1, "dontneed")
            self.shadow[p.pid][page] = bytes(TAG)
            self.history[p.pid][page].add(bytes(TAG))
            self._decohere(p, page)

    @rule(p=procs, page=st.integers(0, NPAGES - 1))
    def munmap(self, p, page):
        if p.alive and page in self.mapped[p.pid]:
            p.munmap(self._addr(page), 1)
            self.mapped[p.pid].discard(page)
            self._decohere(p, page)

    def _decohere(self, p, page):
        for info in self.pin_info.values():
            if info[0] is p and info[1] == page:
                info[2] = False

    # -- GUP and pipes -------------------------------------------------------------------
    @rule(target=pins, p=procs, page=st.integers(0, NPAGES - 1), write=st.booleans(),
          longterm=st.booleans(), fast=st.booleans())
    def pin(self, p, page, write, longterm, fast):
        if not p.alive or page not in self.mapped[p.pid]:
            return None
        try:
            pin = p.pin(self._addr(page), 1, write=write, longterm=longterm, fast=fast)
        except KernelError:
            return None
        # Short-term R/O pins of the zero page are not unshared (gup_must_unshare()):
        # only long-term or writable pins promise to follow the owner's writes.
        self.pin_info[pin.id] = [p, page, bool(longterm or write), write]
        return pin

    @rule(pin=consumes(pins))
    def unpin(self, pin):
        if pin is not None and pin.active:
            pin.unpin()

    @rule(pin=pins)
    def device_write(self, pin):
        if pin is None or not pin.active or not self.pin_info[pin.id][3]:
            return
        owner, page, coherent, _ = self.pin_info[pin.id]
        tag = self._tag(owner.pid)
        pin.write(tag)
        self.history[owner.pid][page].add(tag)    # the device acts for the owner
        if coherent:
            self.shadow[owner.pid][page] = tag

    @rule(target=pipes, p=procs, page=st.integers(0, NPAGES - 1))
    def vmsplice(self, p, page):
        if not p.alive or page not in self.mapped[p.pid]:
            return None
        return (p.vmsplice(self._addr(page), TAG), p.pid, page)

    @rule(pipe=consumes(pipes))
    def read_pipe(self, pipe):
        if pipe is None:
            return
        pp, pid, page = pipe
        got = pp.read(TAG)
        if self.SECURITY:
            assert got in self.history[pid][page], f"pipe of {pid} read {got!r}: written by another process"

    @rule(p=procs, page=st.integers(0, NPAGES - 1))
    def migrate(self, p, page):
        if p.alive and page in self.mapped[p.pid]:
            self.k.migrate(p, self._addr(page), 1)

    # -- files ---------------------------------------------------------------------------
    @rule(p=procs, page=st.integers(0, NPAGES - 1), private=st.booleans())
    def file_write(self, p, page, private):
        if p.alive:
            try:
                p.write((self.fp if private else self.fs) + page * PAGE, self._tag(p.pid))
            except Signal:
                pass

    @rule(n=st.integers(0, NPAGES))
    def truncate(self, n):
        if self.shadow:
            self.f.truncate(n)

    # -- what must always hold ------------------------------------------------------------
    @invariant()
    def kernel_invariants(self):
        self.k.check_invariants()

    @invariant()
    def pins_follow_owners(self):
        if not self.SECURITY:
            return
        for pid_, (owner, page, coherent, _) in self.pin_info.items():
            h = self.k.holders[pid_]
            if coherent and not h.released and owner.alive:
                got = h.buffers[0][0].data[:TAG].ljust(TAG, b"\0")
                assert got == self.shadow[owner.pid][page], f"pin {pid_} is stale: {got!r}"


def _machine(era, security):
    return type(f"Machine_{era.replace('.', '_')}", (MMMachine,), {"ERA": era, "SECURITY": security})


_cfg = settings(max_examples=120, stateful_step_count=30, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
_small = settings(max_examples=40, stateful_step_count=25, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

TestSecurity_6_18 = _machine("6.18", True).TestCase
TestSecurity_6_18.settings = _cfg
TestSecurity_6_2 = _machine("6.2", True).TestCase
TestSecurity_6_2.settings = _small
for _era in ("5.7", "5.8", "5.9", "5.19"):
    _tc = _machine(_era, False).TestCase
    _tc.settings = _small
    globals()[f"TestInvariants_{_era.replace('.', '_')}"] = _tc


def test_security_property_is_violated_under_5_7():
    """The shadow checks are not vacuous: under 5.7 the vmsplice sequence trips them."""
    m = _machine("5.7", True)()
    p = m.start()
    m.write(p, 0)
    c = m.fork(p)
    pipe = m.vmsplice(c, 0)
    m.munmap(c, 0)
    m.write(p, 0)            # mapcount 1: 5.7 reuses the page the child's pipe holds
    try:
        m.read_pipe(pipe)
    except AssertionError as e:
        assert "written by another process" in str(e)
    else:
        raise AssertionError("5.7 should leak through the pipe")
    assert m.k.check_invariants()


def test_machine_explores():
    """The 6.18 machine really runs long sequences (not only the start rule)."""
    m = _machine("6.18", True)()
    p = m.start()
    c = m.fork(p)
    m.write(c, 0)
    pin = m.pin(p, 0, write=False, longterm=True, fast=True)
    m.write(p, 0)
    m.pins_follow_owners()
    m.read(c, 0)
    assert m.k.page(c, m.a).pfn != m.k.page(p, m.a).pfn and pin.read(8) == m.shadow[p.pid][0]


class THPMachine(MMMachine):
    """The same machine on an mTHP: hugepages-16kB/enabled=always and a
    16 KiB-aligned region, so the first write maps one order-2 folio over
    the tracked pages (and one page past them), and the deferred-split
    shrinker may run at any time."""

    @rule(target=MMMachine.procs)
    @precondition(lambda self: self.alive == 0 and not self.shadow)
    def start(self):
        self.k.thp.set("16kB", "always")
        p = self.k.spawn("root")
        raw = p.mmap(2 * 4)
        self.a = (raw + 4 * PAGE - 1) & ~(4 * PAGE - 1)
        self.f = self.k.open("file", NPAGES)
        self.fs = p.mmap(NPAGES, file=self.f, shared=True)
        self.fp = p.mmap(NPAGES, file=self.f)
        self.shadow[p.pid] = {i: bytes(TAG) for i in range(NPAGES)}
        self.history[p.pid] = {i: {bytes(TAG)} for i in range(NPAGES)}
        self.mapped[p.pid] = set(range(NPAGES))
        self.alive = 1
        return p

    @rule()
    def shrink(self):
        self.k.shrink_deferred_split()


TestTHP_6_18 = type("THPMachine_6_18", (THPMachine,), {"ERA": "6.18", "SECURITY": True}).TestCase
TestTHP_6_18.settings = _small


def test_thp_machine_maps_an_mthp():
    """The THP machine's first write maps a 16 KiB folio over the tracked pages."""
    m = type("M", (THPMachine,), {"ERA": "6.18", "SECURITY": True})()
    p = m.start()
    m.write(p, 1)
    assert m.k.page(p, m.a).order == 2 and m.k.page(p, m.a + PAGE).order == 2
    c = m.fork(p)
    m.write(c, 0)
    m.munmap(p, 2)
    m.shrink()
    m.kernel_invariants()
