"""Bad input raises a clear error and leaves the model state exactly as it was."""

import pytest

from mmkit import InvalidArgument, Kernel, KernelError, MMError, SIGBUS, SIGSEGV


@pytest.fixture
def world():
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(2)
    p.write(a, b"A")
    c = p.fork("C")
    f = k.open("data", npages=1)
    m = p.mmap(1, file=f, shared=True)
    p.read(m, 1)
    return k, p, c, a, f, m


BAD_CALLS = [
    ("unaligned munmap", lambda k, p, c, a, f, m: p.munmap(a + 1, 1), InvalidArgument, "not page-aligned"),
    ("negative npages", lambda k, p, c, a, f, m: p.mprotect(a, -1, "r"), InvalidArgument, "positive"),
    ("zero npages mmap", lambda k, p, c, a, f, m: p.mmap(0), InvalidArgument, "positive"),
    ("wrong prot", lambda k, p, c, a, f, m: p.mprotect(a, 1, "rwx"), InvalidArgument, "prot must be"),
    ("wrong prot mmap", lambda k, p, c, a, f, m: p.mmap(1, prot="w"), InvalidArgument, "prot must be"),
    ("unknown advice", lambda k, p, c, a, f, m: p.madvise(a, 1, "free"), InvalidArgument, "unknown advice"),
    ("mprotect hole", lambda k, p, c, a, f, m: p.mprotect(a, 3, "r"), KernelError, "not fully mapped"),
    ("write unmapped", lambda k, p, c, a, f, m: p.write(0x1000, b"x"), SIGSEGV, "no mapping"),
    ("write spanning hole", lambda k, p, c, a, f, m: p.write(a + 4096 + 4000, b"x" * 200), SIGSEGV,
     "no mapping"),
    ("pin unmapped", lambda k, p, c, a, f, m: p.pin(0x1000), KernelError, "EFAULT"),
    ("pin partly unmapped", lambda k, p, c, a, f, m: p.pin(a, 3), KernelError, "EFAULT"),
    ("data not bytes", lambda k, p, c, a, f, m: p.write(a, "str"), InvalidArgument, "bytes"),
    ("address not int", lambda k, p, c, a, f, m: p.read("a", 1), InvalidArgument, "int"),
    ("negative read", lambda k, p, c, a, f, m: p.read(a, -1), InvalidArgument, "non-negative"),
    ("wipeonfork file", lambda k, p, c, a, f, m: p.madvise(m, 1, "wipeonfork"), KernelError, "EINVAL"),
    ("negative truncate", lambda k, p, c, a, f, m: f.truncate(-1), InvalidArgument, "non-negative"),
    ("foreign file", lambda k, p, c, a, f, m: p.mmap(1, file=Kernel().open("x")), InvalidArgument, "this kernel"),
    ("foreign process", lambda k, p, c, a, f, m: k.page(Kernel().spawn(), a), InvalidArgument, "this kernel"),
    ("migrate unaligned", lambda k, p, c, a, f, m: k.migrate(p, a + 8, 1), InvalidArgument, "aligned"),
    ("beyond EOF", lambda k, p, c, a, f, m: (f.truncate(0), p.read(m, 1))[1], SIGBUS, "beyond EOF"),
]


@pytest.mark.parametrize("name,call,exc,words", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_call_raises_and_changes_nothing(world, name, call, exc, words):
    """Each bad call raises its specific error, says what was wrong, and changes nothing it should not."""
    k, p, c, a, f, m = world
    if name == "beyond EOF":
        f.truncate(0)
        call = lambda *w: p.read(m, 1)     # noqa: E731 -- the truncate is set-up, the read is the bad call
    before = k.dump()
    with pytest.raises(exc) as e:
        call(k, p, c, a, f, m)
    assert words in str(e.value)
    assert isinstance(e.value, MMError)
    assert k.dump() == before
    k.check_invariants()


def test_unpin_twice(world):
    """Unpinning twice is an error and leaves the counters alone."""
    k, p, c, a, f, m = world
    pin = p.pin(a)
    pin.unpin()
    before = k.dump()
    with pytest.raises(InvalidArgument, match="already released"):
        pin.unpin()
    assert k.dump() == before


def test_write_through_read_only_pin(world):
    """A device may not write through a read-only pin."""
    k, p, c, a, f, m = world
    pin = p.pin(a, write=False)
    before = k.dump()
    with pytest.raises(InvalidArgument, match="read-only"):
        pin.write(b"x")
    assert k.dump() == before


def test_exited_process_refuses(world):
    """An exited process can do nothing."""
    k, p, c, a, f, m = world
    c.exit()
    with pytest.raises(InvalidArgument, match="has exited"):
        c.read(a, 1)
    with pytest.raises(InvalidArgument, match="has exited"):
        c.fork()


def test_unknown_era():
    """An unknown era names the presets."""
    with pytest.raises(InvalidArgument, match="presets are 5.7"):
        Kernel(era="4.4")


def test_unknown_era_rule():
    """Flipping a rule that does not exist is an error."""
    from mmkit import era
    with pytest.raises(InvalidArgument, match="unknown era rule"):
        era("6.18").replace(no_such_rule=True)


def test_restore_foreign_snapshot():
    """A snapshot of one era cannot be restored into another."""
    s = Kernel(era="5.7").snapshot()
    k = Kernel()
    with pytest.raises(InvalidArgument, match="era 5.7"):
        k.restore(s)
