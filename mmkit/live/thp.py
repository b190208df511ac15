"""Transparent huge pages on the live kernel: sysfs policy with guaranteed
restore, folio geometry from /proc/kpageflags, PMD mappings from
PAGEMAP_SCAN, and khugepaged detection.

Policy (``k.thp``, a :class:`ThpControl`)
-----------------------------------------
``/sys/kernel/mm/transparent_hugepage/enabled`` (``always``, ``madvise``,
``never``) and ``hugepages-<size>kB/enabled`` per mTHP size (``always``,
``inherit``, ``madvise``, ``never``; Documentation/admin-guide/mm/transhuge.rst).
Every value a :class:`ThpControl` changes is written back when the owning
:class:`~mmkit.live.LiveKernel` closes, when its constructor fails, at
interpreter exit (``atexit``), on SIGTERM (a handler chained in front of
the previous one, installed from the main thread), and -- when Python dies
without running any of these (SIGKILL) -- by the fork server, which
receives SIGTERM through PR_SET_PDEATHSIG and writes back the values listed
in its restore file before it exits.  Changes are serialised across
processes by an flock on the THP sysfs directory itself (held from the
first change to the restore; no lock file is left anywhere), so two
LiveKernels never restore each other's values in the wrong order.

Observation
-----------
* **Folio geometry** (:func:`folio_geometry`): a large folio's pages carry
  KPF_COMPOUND_HEAD (15) on the head and KPF_COMPOUND_TAIL (16) on every
  tail (fs/proc/page.c: stable_page_flags()); the buddy allocator aligns a
  folio of 2^order pages to 2^order PFNs, so the head is the nearest
  COMPOUND_HEAD at or below the PFN and the size is the run of tails after it.
* **PMD mapping** (:func:`pmd_mapped`): the PAGEMAP_SCAN ioctl on
  /proc/PID/pagemap (v6.7+, fs/proc/task_mmu.c: pagemap_scan_thp_entry())
  reports PAGE_IS_HUGE for addresses mapped by a present PMD, per page.
  Before v6.7 the fallback is smaps ``AnonHugePages`` of the VMA: 0 means no
  PMD mapping; anything else is ambiguous (``None``).
* **khugepaged** (:func:`khugepaged_collapsed`): the global
  ``khugepaged/pages_collapsed`` counter; a step during which it moved is
  flagged by the conformance runner (it may be another process's collapse).
"""

import atexit
import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import struct
import threading
import time

from ..errors import InvalidArgument

__all__ = ["ThpControl", "SYSFS", "thp_available", "thp_snapshot", "folio_geometry", "pmd_mapped",
           "folio_census", "khugepaged_collapsed", "PMD_SIZE"]

SYSFS = "/sys/kernel/mm/transparent_hugepage"
PMD_SIZE = 2 << 20
TOP_VALUES = ("always", "madvise", "never")
SIZE_VALUES = ("always", "inherit", "madvise", "never")

KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, KPF_HUGE, KPF_THP = 15, 16, 17, 22

#: include/uapi/linux/fs.h: PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg) (96 bytes)
PAGEMAP_SCAN = (3 << 30) | (96 << 16) | (ord("f") << 8) | 16
PAGE_IS_PRESENT, PAGE_IS_HUGE = 1 << 3, 1 << 6


def thp_available():
    """(ok, reason): does this kernel have transparent huge pages in sysfs?"""
    if not os.path.isdir(SYSFS):
        return False, f"{SYSFS} is absent: the kernel has no CONFIG_TRANSPARENT_HUGEPAGE"
    if not os.access(os.path.join(SYSFS, "enabled"), os.W_OK):
        return False, f"{SYSFS}/enabled is not writable (not root?)"
    return True, f"THP sysfs at {SYSFS}"


def _read_value(path):
    """The selected value of a sysfs knob: ``[madvise]`` in a choice list, else the text."""
    with open(path) as f:
        text = f.read().strip()
    if "[" in text:
        return text[text.index("[") + 1:text.index("]")]
    return text


def _write_value(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def thp_snapshot(root=SYSFS):
    """Every writable THP knob under ``root`` -> its current value (for tests
    that check nothing was left changed).  Counters and read-only files are
    left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if os.path.basename(dirpath) == "stats":
            dirnames[:] = []
            continue
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            if not os.stat(p).st_mode & 0o200:
                continue
            with contextlib.suppress(OSError):
                out[os.path.relpath(p, root)] = _read_value(p)
    return out


def khugepaged_collapsed(root=SYSFS):
    """khugepaged's global ``pages_collapsed`` counter (None without THP)."""
    try:
        return int(_read_value(os.path.join(root, "khugepaged", "pages_collapsed")))
    except (OSError, ValueError):
        return None


# -- restore on every exit path ------------------------------------------------------
_controls = set()          # ThpControls with unrestored changes
_reg_lock = threading.Lock()
_hooks_installed = False
_prev_sigterm = None


def _restore_all():
    for c in list(_controls):
        c.restore()


def _on_sigterm(signum, frame):
    _restore_all()
    prev = _prev_sigterm
    if callable(prev):
        prev(signum, frame)
        return
    if prev == signal.SIG_IGN:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_hooks():
    global _hooks_installed, _prev_sigterm
    with _reg_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_restore_all)
        if threading.current_thread() is threading.main_thread():
            prev = signal.getsignal(signal.SIGTERM)
            if prev is not _on_sigterm and prev != signal.SIG_IGN:
                _prev_sigterm = prev
                signal.signal(signal.SIGTERM, _on_sigterm)


class ThpControl:
    """The THP policy of the live kernel, changed for the lifetime of one
    :class:`~mmkit.live.LiveKernel` and always restored.

    Attributes
    ----------
    sizes : tuple of str
        The anonymous THP sizes as the sysfs directories ``hugepages-<size>``
        list them (those with an ``enabled`` file), smallest first
        (``("16kB", ..., "2048kB")`` on x86-64: orders 2..9).

    Examples
    --------
    >>> k.thp.enabled                                 # doctest: +SKIP
    'madvise'
    >>> k.thp.set("64kB", "always"); k.thp.get("64kB")  # doctest: +SKIP
    'always'
    """

    def __init__(self, root=SYSFS, restore_file=None, lock_timeout=60.0):
        self.root = root
        self._saved = {}               # relpath -> original value (first change wins)
        self._lock_fd = None
        self._lock_timeout = lock_timeout
        self._restore_file = restore_file
        # anon sizes only: a size whose directory has no ``enabled`` (8kB here,
        # THP_ORDERS_ALL_FILE_DEFAULT without THP_ORDERS_ALL_ANON) is for
        # shmem/page cache and has only ``shmem_enabled``
        names = [d for d in os.listdir(root) if d.startswith("hugepages-")
                 and os.path.exists(os.path.join(root, d, "enabled"))] if os.path.isdir(root) else []
        self.sizes = tuple(sorted((d[len("hugepages-"):] for d in names), key=lambda s: int(s.rstrip("kB"))))

    def __repr__(self):
        return f"<ThpControl enabled={self.enabled} changed={sorted(self._saved)}>"

    # -- reading ------------------------------------------------------------------
    def _path(self, rel):
        return os.path.join(self.root, rel)

    def _check_size(self, size):
        if size not in self.sizes:
            raise InvalidArgument(f"unknown THP size {size!r}; this kernel has {', '.join(self.sizes)}")

    def read(self, rel):
        """The value of any knob under the THP sysfs dir (``"khugepaged/defrag"``)."""
        return _read_value(self._path(rel))

    @property
    def enabled(self):
        """The top-level policy: ``"always"``, ``"madvise"`` or ``"never"``."""
        return self.read("enabled")

    @enabled.setter
    def enabled(self, value):
        if value not in TOP_VALUES:
            raise InvalidArgument(f"THP enabled must be one of {', '.join(TOP_VALUES)}, not {value!r}")
        self.write("enabled", value)

    def get(self, size):
        """The policy of one mTHP size: ``"always"``, ``"inherit"``, ``"madvise"`` or ``"never"``."""
        self._check_size(size)
        return self.read(f"hugepages-{size}/enabled")

    def set(self, size, value):
        """Set one mTHP size's policy until the LiveKernel closes."""
        self._check_size(size)
        if value not in SIZE_VALUES:
            raise InvalidArgument(f"THP size policy must be one of {', '.join(SIZE_VALUES)}, not {value!r}")
        self.write(f"hugepages-{size}/enabled", value)

    def apply(self, policy):
        """Apply a dict ``{"64kB": "always", "enabled": "madvise", ...}``."""
        if not isinstance(policy, dict):
            raise InvalidArgument(f"thp must be a dict of size -> policy, not {policy!r}")
        for key, value in policy.items():
            if key == "enabled":
                self.enabled = value
            else:
                self.set(key, value)

    # -- writing and restoring ----------------------------------------------------------
    def _lock(self):
        if self._lock_fd is not None:
            return
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        deadline = time.monotonic() + self._lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(fd)
                    raise InvalidArgument(f"another LiveKernel has held the THP sysfs lock (flock on "
                                          f"{self.root}) for {self._lock_timeout:.0f} s") from e
                time.sleep(0.05)
        self._lock_fd = fd

    def write(self, rel, value):
        """Write any knob under the THP sysfs dir, remembering its original value."""
        path = self._path(rel)
        if not os.path.exists(path):
            raise InvalidArgument(f"no THP knob {rel!r} under {self.root}")
        self._lock()
        _install_hooks()
        if rel not in self._saved:
            self._saved[rel] = _read_value(path)
            _controls.add(self)
            self._save_restore_file()
        try:
            _write_value(path, value)
        except OSError as e:
            raise InvalidArgument(f"the kernel refused {value!r} for {rel}: {e.strerror}") from e

    def _save_restore_file(self):
        """List the original values for the fork server, which writes them
        back if Python dies without restoring (worker.c: on_parent_death())."""
        if not self._restore_file:
            return
        tmp = self._restore_file + ".new"
        with open(tmp, "w") as f:
            for rel, value in self._saved.items():
                f.write(f"{self._path(rel)}\t{value}\n")
        os.replace(tmp, self._restore_file)

    @property
    def changed(self):
        """knob -> original value, for every knob changed and not yet restored."""
        return dict(self._saved)

    def restore(self):
        """Write back every original value (idempotent; never raises)."""
        for rel, value in list(self._saved.items()):
            with contextlib.suppress(OSError):
                _write_value(self._path(rel), value)
        self._saved.clear()
        _controls.discard(self)
        if self._restore_file:
            with contextlib.suppress(OSError):
                os.unlink(self._restore_file)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None


# -- observation ---------------------------------------------------------------------
def _kpageflags(first, n):
    fd = os.open("/proc/kpageflags", os.O_RDONLY | os.O_CLOEXEC)
    try:
        b = os.pread(fd, 8 * n, 8 * first)
    finally:
        os.close(fd)
    return struct.unpack(f"<{len(b) // 8}Q", b)


def folio_geometry(pfn, flags, max_order=18):
    """(head_pfn, nr_pages) of the folio holding ``pfn`` whose kpageflags are
    ``flags``; (None, None) if no head is found.  A page without
    COMPOUND_HEAD/TAIL is its own order-0 folio.

    A folio of 2^n pages starts on a multiple of 2^n PFNs, so the head is
    the first of ``pfn`` rounded down to 2, 4, 8... PFNs that carries
    COMPOUND_HEAD, and the size is the first power of two 2^j for which
    the page 2^j after the head is not one of its tails (at most
    2 * max_order single reads)."""
    head_bit, tail_bit = 1 << KPF_COMPOUND_HEAD, 1 << KPF_COMPOUND_TAIL
    if not flags & (head_bit | tail_bit):
        return pfn, 1
    head = pfn if flags & head_bit else None
    o = 1
    while head is None and o <= max_order:
        cand = pfn & ~((1 << o) - 1)
        f = _kpageflags(cand, 1)
        if f and f[0] & head_bit:
            head = cand
        o += 1
    if head is None:
        return None, None
    j = max(1, (pfn - head).bit_length())
    while j <= max_order:
        f = _kpageflags(head + (1 << j), 1)
        if not f or not (f[0] & tail_bit) or f[0] & head_bit:
            return head, 1 << j
        j += 1
    return head, 1 << max_order


def pmd_mapped(pid, addr):
    """Is ``addr`` of process ``pid`` mapped by a present PMD (a PMD-mapped
    THP)?  PAGEMAP_SCAN's PAGE_IS_HUGE (v6.7+); else smaps: False when the
    VMA has ``AnonHugePages: 0 kB``, None when that cannot tell."""
    base = addr & ~4095
    vec = ctypes.create_string_buffer(24)
    arg = bytearray(struct.pack("<12Q", 96, 0, base, base + 4096, 0, ctypes.addressof(vec), 1, 0, 0, 0, 0,
                                PAGE_IS_PRESENT | PAGE_IS_HUGE))
    fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
    try:
        n = fcntl.ioctl(fd, PAGEMAP_SCAN, arg, True)
    except OSError as e:
        if e.errno not in (errno.ENOTTY, errno.EINVAL):
            raise
        n = None
    finally:
        os.close(fd)
    if n is not None:
        if n == 0:
            return False
        start, end, cats = struct.unpack_from("<3Q", vec, 0)
        return bool(cats & PAGE_IS_HUGE) and start <= base < end
    return _smaps_anon_huge_zero(pid, base)


def _smaps_anon_huge_zero(pid, addr):
    inside = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                lo, hi = (int(x, 16) for x in first.split("-"))
                inside = lo <= addr < hi
            elif inside and first == "AnonHugePages:":
                return False if int(line.split()[1]) == 0 else None
    return None


def _pread_u64s(path, index, n):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        b = os.pread(fd, 8 * n, 8 * index)
    finally:
        os.close(fd)
    return struct.unpack(f"<{len(b) // 8}Q", b)


def folio_census(pids, base, head, nr, moves=()):
    """The folio-level mapcounts of the anon folio ``[head, head + nr)``
    whose first page is mapped at ``base``, counted in the page tables of
    ``pids``: ``(large_mapcount, entire_mapcount, nr_pages_mapped)``, or
    None when the count is not the whole story.

    An anonymous folio is mapped only by the process that faulted it and
    its forks (its anon_vma), at the same address in each of them unless
    an mremap() moved part of it: ``moves`` lists the mremap()s done,
    ``(old_start, old_end, new_start)``, and the folio's window is also
    read where those moves put it (``base`` shifted by each move's
    distance, both ways, and by two moves in a row), each (process,
    address) counted once.  A PMD mapping counts 1 in ``entire_mapcount``
    and ``large_mapcount`` (mm/rmap.c: __folio_add_rmap(), RMAP_LEVEL_PMD),
    each PTE 1 in ``large_mapcount``, and ``nr_pages_mapped`` is the pages
    with at least one PTE.  The census is checked against /proc/kpagecount,
    which is each page's PTE mapcount plus the entire mapcount
    (CONFIG_PAGE_MAPCOUNT): if any page disagrees, someone else maps the
    folio (or a move not listed put it elsewhere) and None is returned.
    """
    pm = PMD_SIZE // 4096
    deltas = {0}
    for _ in range(2):
        deltas |= {d + s * (new - old) for d in deltas for old, _end, new in moves for s in (1, -1)}
    bases = sorted({base + d for d in deltas if base + d >= 0})
    entire = 0
    per_page = [0] * nr
    for pid in pids:
        seen = set()
        for b in bases:
            try:
                entries = _pread_u64s(f"/proc/{pid}/pagemap", b // 4096, nr)
                huge = nr == pm and b % PMD_SIZE == 0 and pmd_mapped(pid, b)
            except OSError:
                return None
            if huge:
                if entries and entries[0] >> 63 and entries[0] & ((1 << 55) - 1) == head and b not in seen:
                    entire += 1
                    seen.update(b + j * 4096 for j in range(nr))
                continue
            for j, e in enumerate(entries):
                if e >> 63 and not e >> 62 & 1 and (e & ((1 << 55) - 1)) == head + j and b + j * 4096 not in seen:
                    per_page[j] += 1
                    seen.add(b + j * 4096)
    counts = _pread_u64s("/proc/kpagecount", head, nr)
    if len(counts) != nr or any(c != per_page[j] + entire for j, c in enumerate(counts)):
        return None
    return sum(per_page) + entire, entire, sum(1 for c in per_page if c)
