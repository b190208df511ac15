"""No public verb hangs on a bad argument, and the kernel's own limits hold.

Every verb is called with huge, negative, zero, float, bool, None and string
values in each argument position on a small world (a 4-page mapping).  Each
call must return or raise an :class:`~mmkit.MMError` within a second, and a
call that raises must leave the state exactly as it was.  A call that
returns is fine (``read(a, 0)`` is a valid zero-byte read): bad input is
what the kernel refuses, and the specific refusals are tested below.
"""

import signal
from contextlib import contextmanager

import pytest

from mmkit import Kernel, KernelError, MMError

BAD = [10**9, 2**36, 10**30, -1, -(2**64), 0, 1.5, float("inf"), float("nan"), True, False, None, "1", b"x"]
PAGE = 4096


class Hang(Exception):
    pass


@contextmanager
def deadline(seconds):
    """Raise Hang in this thread if the block runs longer than ``seconds``."""
    def fire(*_):
        raise Hang(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def world():
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(4)
    p.write(a, b"A" * (4 * PAGE))
    c = p.fork("C")
    f = k.open("data", npages=4)
    m = p.mmap(4, file=f, shared=True)
    p.read(m, 1)
    w = dict(k=k, p=p, c=c, a=a, f=f, m=m, t=a + (1 << 32))
    w["pin"] = p.pin(a, 1, write=True)
    w["ref"] = p.get_user_pages(a + PAGE, 1)
    w["pipe"] = p.vmsplice(a + 2 * PAGE, 100)
    return w


def state(k):
    """Everything a caller can observe, as text."""
    vmas = [(v.start, v.end, v.prot, v.hugepage, v.nohugepage) for t in k.tasks.values() if t.alive
            for v in t.mm.vmas]
    return (k.dump() + "\n" + repr(sorted((f.name, f.size) for f in k.files.values())) + "\n" + repr(vmas)
            + "\n" + repr(k.thp.state()))


# verb name -> (callable taking the world and the argument list, the valid arguments)
VERBS = {
    "mmap": (lambda w, *x: w["p"].mmap(*x), [1]),
    "mmap file": (lambda w, n, off: w["p"].mmap(n, file=w["f"], offset=off), [1, 0]),
    "munmap": (lambda w, *x: w["p"].munmap(*x), ["a", 1]),
    "mprotect": (lambda w, *x: w["p"].mprotect(*x, "r"), ["a", 1]),
    "madvise": (lambda w, *x: w["p"].madvise(*x, "dontneed"), ["a", 1]),
    "madvise hugepage": (lambda w, *x: w["p"].madvise(*x, "hugepage"), ["a", 1]),
    "madvise collapse": (lambda w, *x: w["p"].madvise(*x, "collapse"), ["a", 1]),
    "thp set": (lambda w, *x: w["k"].thp.set(*x), ["64kB", "always"]),
    "write": (lambda w, addr: w["p"].write(addr, b"z"), ["a"]),
    "read": (lambda w, *x: w["p"].read(*x), ["a", 1]),
    "pin": (lambda w, *x: w["p"].pin(*x), ["a", 1]),
    "get_user_pages": (lambda w, *x: w["p"].get_user_pages(*x), ["a", 1]),
    "vmsplice": (lambda w, *x: w["p"].vmsplice(*x), ["a", 1]),
    "mremap": (lambda w, a, old, new=8: w["p"].mremap(a, old, new, maymove=True), ["a", 4, 8]),
    "mremap fixed": (lambda w, a, n, t=None: w["p"].mremap(a, n, n, maymove=True, fixed=w["t"] if t is None else t),
                     ["a", 1, "t"]),
    "migrate": (lambda w, *x: w["k"].migrate(w["p"], *x), ["a", 1]),
    "page": (lambda w, addr: w["k"].page(w["p"], addr), ["a"]),
    "open": (lambda w, n: w["k"].open("new", npages=n), [1]),
    "truncate": (lambda w, n: w["f"].truncate(n), [1]),
    "file read": (lambda w, *x: w["f"].read(*x), [0, 1]),
    "file write": (lambda w, off: w["f"].write(off, b"z"), [0]),
    "pin read": (lambda w, *x: w["pin"].read(*x), [1, 0]),
    "pin write": (lambda w, off: w["pin"].write(b"z", off), [0]),
    "ref read": (lambda w, *x: w["ref"].read(*x), [1, 0]),
    "pipe read": (lambda w, n: w["pipe"].read(n), [1]),
    "spawn": (lambda w, name: w["k"].spawn(name), ["Q"]),
    "fork": (lambda w, name: w["p"].fork(name), ["D"]),
}

CASES = [(verb, i, bad) for verb, (_, args) in VERBS.items() for i in range(len(args)) for bad in BAD]


@pytest.mark.parametrize("verb,pos,bad", CASES, ids=[f"{v}-arg{i}-{b!r}" for v, i, b in CASES])
def test_bad_argument_returns_or_raises_at_once(verb, pos, bad):
    """A bad argument returns or raises an MMError within a second, and a refusal changes nothing."""
    w = world()
    call, args = VERBS[verb]
    args = [w[x] if isinstance(x, str) and x in w else x for x in args]
    args[pos] = bad
    before = state(w["k"])
    try:
        with deadline(1.0):
            call(w, *args)
    except MMError:
        assert state(w["k"]) == before, f"{verb}{tuple(args)} raised but changed the state"
    except Hang:
        pytest.fail(f"{verb}{tuple(args)} did not return within a second")
    except Exception as e:                                         # noqa: BLE001
        pytest.fail(f"{verb}{tuple(args)} raised {type(e).__name__}, not an MMError: {e}")


@pytest.mark.parametrize("verb", ["pin", "get_user_pages", "migrate", "munmap", "mprotect", "madvise",
                                  "madvise hugepage", "mremap", "mremap fixed"])
@pytest.mark.parametrize("count", [10**9, 2**36, 10**30])
def test_huge_count_from_a_mapped_address(verb, count):
    """A huge page count starting inside a 4-page mapping fails (or acts on what is mapped) at once."""
    w = world()
    call, _ = VERBS[verb]
    before = state(w["k"])
    try:
        with deadline(1.0):
            call(w, w["a"], count)
    except MMError:
        assert state(w["k"]) == before
    except Hang:
        pytest.fail(f"{verb}(a, {count}) did not return within a second")


@pytest.mark.parametrize("count", [2**35 + 1, 2**36, 10**30])
@pytest.mark.parametrize("maymove", [False, True])
def test_mremap_to_a_huge_size_fails_at_once(count, maymove):
    """Growing a mapping beyond the address space fails at once, moving or not, and changes nothing:
    EINVAL since v6.17 (check_mremap_params(): "Is the new length silly?")."""
    w = world()
    before = state(w["k"])
    with deadline(1.0):
        with pytest.raises(KernelError) as e:
            w["p"].mremap(w["a"], 4, count, maymove=maymove)
    assert e.value.errno == "EINVAL"
    assert state(w["k"]) == before


@pytest.mark.parametrize("n", [2**36, 10**30])
def test_huge_vmsplice_from_a_mapped_address(n):
    """vmsplice of more bytes than are mapped fails at once (EFAULT past the mapping)."""
    w = world()
    before = state(w["k"])
    with deadline(1.0):
        with pytest.raises(MMError):
            w["p"].vmsplice(w["a"], n)
    assert state(w["k"]) == before


@pytest.mark.parametrize("npages", [2**35 + 1, 2**36, 10**30])
def test_mmap_beyond_the_user_address_space_is_enomem(npages):
    """A mapping larger than the 47-bit (128 TiB) user address space fails with ENOMEM."""
    w = world()
    before = state(w["k"])
    with pytest.raises(KernelError) as e:
        w["p"].mmap(npages)
    assert e.value.errno == "ENOMEM"
    assert state(w["k"]) == before


def test_every_mapping_ends_below_the_top_of_user_space():
    """Mapping until no range is left ends in ENOMEM, every mapping below TASK_SIZE (128 TiB)."""
    k = Kernel()
    p = k.spawn()
    ends = []
    with pytest.raises(KernelError, match="ENOMEM"):
        for _ in range(10**4):
            a = p.mmap(2**26)            # 256 GiB at a time: the cost is per VMA, not per page
            ends.append(a + 2**26 * PAGE)
    assert ends and max(ends) <= 2**47 - PAGE
    k.check_invariants()


@pytest.mark.parametrize("npages", [2**51 + 1, 10**30])
def test_file_size_beyond_the_maximum_is_efbig(npages):
    """A file larger than MAX_LFS_FILESIZE is refused with EFBIG, by open(), truncate() and pwrite()."""
    w = world()
    before = state(w["k"])
    with pytest.raises(KernelError) as e:
        w["k"].open("big", npages=npages)
    assert e.value.errno == "EFBIG"
    with pytest.raises(KernelError) as e:
        w["f"].truncate(npages)
    assert e.value.errno == "EFBIG"
    with pytest.raises(KernelError) as e:
        w["f"].write(npages * PAGE, b"x")
    assert e.value.errno == "EFBIG"
    assert state(w["k"]) == before


def test_truncate_to_a_huge_size_that_fits_is_cheap():
    """Growing a file to the largest size the kernel allows costs nothing per page."""
    w = world()
    with deadline(1.0):
        w["f"].truncate(2**51 - 1)
        w["f"].truncate(1)
    w["k"].check_invariants()


@pytest.mark.parametrize("bad", BAD + ["sometimes", "4kB", "2048KB"])
def test_thp_enabled_rejects_bad_values(bad):
    """Writing a bad value to the top-level THP `enabled` raises an MMError and changes nothing."""
    w = world()
    before = state(w["k"])
    with pytest.raises(MMError):
        w["k"].thp.enabled = bad
    assert state(w["k"]) == before


@pytest.mark.parametrize("count", [10**9, 2**36, 10**30])
def test_huge_count_on_a_thp_is_cheap(count):
    """Verbs on a PMD-mapped THP with a huge page count fail (or act on what is mapped) at once."""
    k = Kernel()
    p = k.spawn("P")
    a = p.mmap(512)
    p.madvise(a, 512, "hugepage")
    p.write(a, b"x")
    for verb in (p.pin, p.get_user_pages, p.munmap):
        with deadline(1.0):
            try:
                verb(a, count)
            except MMError:
                pass
    with deadline(1.0):
        k.migrate(p, a, count)
    k.check_invariants()


@pytest.mark.parametrize("count", [2**36, 10**30])
def test_munmap_past_the_top_of_user_space_is_einval(count):
    """munmap of a range ending past TASK_SIZE is EINVAL (do_vmi_munmap()) and unmaps nothing."""
    w = world()
    before = state(w["k"])
    with pytest.raises(KernelError) as e:
        w["p"].munmap(w["a"], count)
    assert e.value.errno == "EINVAL"
    assert state(w["k"]) == before
