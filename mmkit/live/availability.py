"""Can the live backend run here?  :func:`available` answers with a reason.

Every check is bounded (no hang): platform, root, the /proc files the
observations come from, a PFN in pagemap, pidfds, and a compiled worker;
io_uring separately (``available("io_uring")``), since only long-term
writable pins need it.
"""

import ctypes
import mmap
import os
import platform
import struct
import sys

from ..errors import MMError

__all__ = ["available", "LiveUnavailable", "require"]

_results = {}
_NR_IO_URING_SETUP = 425     # the same number on every architecture (unified table, 5.1+)


class LiveUnavailable(MMError):
    """The live backend cannot run on this machine; the message says what is
    missing and how to get it."""


def _kernel_version():
    parts = platform.release().split("-")[0].split(".")
    try:
        return tuple(int(x) for x in parts[:2])
    except ValueError:
        return (0, 0)


def _check():
    if not sys.platform.startswith("linux"):
        return False, (f"not Linux ({sys.platform}): the live backend observes a running Linux kernel "
                       "through /proc; run mmkit in a Linux VM as root")
    if os.geteuid() != 0:
        return False, ("not root: /proc/PID/pagemap hides PFNs and /proc/kpageflags is root-only; "
                       "run as root, e.g. in a throw-away Linux VM (sudo jupyter lab --allow-root)")
    if _kernel_version() < (5, 19):
        return False, (f"kernel {platform.release()} is older than 5.19: PG_anon_exclusive (kpageflags "
                       "bit 34) does not exist there; boot a 6.x kernel")
    if os.sysconf("SC_PAGE_SIZE") != 4096:
        return False, "PAGE_SIZE is not 4096; mmkit models 4 KiB pages (use an x86_64 VM)"
    for path in ("/proc/kpageflags", "/proc/kpagecount", "/proc/self/pagemap"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            os.close(fd)
        except OSError as e:
            return False, (f"cannot open {path} ({e.strerror}): the kernel needs CONFIG_PROC_PAGE_MONITOR "
                           "and a /proc mounted without hidepid restrictions")
    m = mmap.mmap(-1, 4096)
    try:
        m[0] = 1
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        try:
            entry = struct.unpack("<Q", os.pread(fd, 8, addr // 4096 * 8))[0]
        finally:
            os.close(fd)
    finally:
        del addr
        m.close()
    if not entry >> 63 or not entry & ((1 << 55) - 1):
        return False, ("/proc/self/pagemap shows no PFN for a touched page (needs CAP_SYS_ADMIN in the "
                       "initial user namespace): run as real root, not in an unprivileged container")
    if not hasattr(os, "pidfd_open"):
        return False, "Python lacks os.pidfd_open (needs Python >= 3.9 on Linux >= 5.3)"
    from ._build import BuildError, worker_binary
    try:
        worker_binary()
    except (BuildError, OSError) as e:
        return False, f"cannot build the C worker: {e}"
    return True, (f"live kernel {platform.release()} ({platform.machine()}), root, pagemap and "
                  "kpageflags readable, worker compiled")


def _check_io_uring():
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            if f.read().strip() != "0":
                return False, ("io_uring is disabled (/proc/sys/kernel/io_uring_disabled != 0): "
                               "echo 0 > /proc/sys/kernel/io_uring_disabled")
    except FileNotFoundError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(ctypes.c_long(_NR_IO_URING_SETUP), ctypes.c_uint(4), params)
    if fd < 0:
        e = ctypes.get_errno()
        return False, (f"io_uring_setup() failed ({os.strerror(e)}): the kernel needs CONFIG_IO_URING "
                       "(and no seccomp filter blocking it)")
    os.close(fd)
    return True, "io_uring enabled"


def available(feature=None):
    """Can :class:`~mmkit.live.LiveKernel` run here (and, with ``feature``,
    that part of it)?

    Parameters
    ----------
    feature : {None, "io_uring"}
        ``"io_uring"``: can it also take long-term writable pins (io_uring
        fixed buffers)?  Everything else runs without io_uring; those pins
        then raise :class:`~mmkit.live.LiveUnsupported`.

    Returns
    -------
    (bool, str)
        ``(True, description)`` or ``(False, what is missing and how to get
        it)``.  Cached after the first call; never raises, never hangs.

    Examples
    --------
    >>> ok, why = available()
    >>> isinstance(ok, bool) and isinstance(why, str)
    True
    """
    if feature not in _CHECKS:
        raise ValueError(f"feature must be one of {list(_CHECKS)}, not {feature!r}")
    if feature not in _results:
        base = available(None) if feature is not None else (True, "")
        if not base[0]:
            _results[feature] = base          # no live backend at all: say that, not the feature
        else:
            try:
                _results[feature] = _CHECKS[feature]()
            except Exception as e:            # an unexpected platform: report, never raise
                _results[feature] = (False, f"live backend check failed: {type(e).__name__}: {e}")
    return _results[feature]


_CHECKS = {None: _check, "io_uring": _check_io_uring}


def require(feature=None):
    """Raise :class:`LiveUnavailable` unless :func:`available`."""
    ok, why = available(feature)
    if not ok:
        raise LiveUnavailable(why)
