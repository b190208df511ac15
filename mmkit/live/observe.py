"""Reading one page's state from /proc, without touching the page.

Sources (Documentation/admin-guide/mm/pagemap.rst):

``/proc/PID/pagemap``
    one u64 per virtual page: bits 0-54 PFN (root only), 56 "page
    exclusively mapped" (the precise page mapcount is 1; *not*
    PageAnonExclusive), 61 file page or shared anon, 62 swapped, 63 present.
``/proc/kpagecount``
    one u64 per PFN.  With CONFIG_PAGE_MAPCOUNT (6.15+; the classic
    behaviour before) it is the page's mapcount, not its refcount.
``/proc/kpageflags``
    one u64 per PFN (``KPF_*``).  Bit 34 is ``KPF_OWNER_2`` /
    ``KPF_MAPPEDTODISK``: the kernel flag it copies is ``PG_anon_exclusive``
    for anon pages (PG_anon_exclusive aliases that bit since 5.19).  It is a
    "kernel hacking" bit, not stable ABI; for a subpage of a PTE-mapped THP
    it shows the head page's bit.

Nothing here reads a PTE's write bit: user space has no interface for it
(no PTDUMP_DEBUGFS on this config, pagemap exports no such bit).
"""

import os
import struct

__all__ = ["KPF", "PM_PRESENT", "PM_FILE", "PM_EXCLUSIVE", "PM_SWAP", "PFN_MASK",
           "RawPage", "read_raw", "vma_at", "flag_names"]

PFN_MASK = (1 << 55) - 1
PM_EXCLUSIVE = 1 << 56
PM_FILE = 1 << 61
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63

#: include/uapi/linux/kernel-page-flags.h, plus the "kernel hacking" bits
#: of fs/proc/page.c that this kit reads.
KPF = dict(LOCKED=0, ERROR=1, REFERENCED=2, UPTODATE=3, DIRTY=4, LRU=5, ACTIVE=6, SLAB=7,
           WRITEBACK=8, RECLAIM=9, BUDDY=10, MMAP=11, ANON=12, SWAPCACHE=13, SWAPBACKED=14,
           COMPOUND_HEAD=15, COMPOUND_TAIL=16, HUGE=17, UNEVICTABLE=18, HWPOISON=19, NOPAGE=20,
           KSM=21, THP=22, OFFLINE=23, ZERO_PAGE=24, IDLE=25, PGTABLE=26,
           RESERVED=32, MLOCKED=33, ANON_EXCLUSIVE=34, PRIVATE=35, PRIVATE_2=36,
           OWNER_PRIVATE=37, ARCH=38, UNCACHED=39, SOFTDIRTY=40, ARCH_2=41)


def flag_names(flags):
    """The ``KPF_*`` names set in ``flags`` (bit 34 shown as ANON_EXCLUSIVE
    for anon pages, as MAPPEDTODISK otherwise)."""
    out = []
    for name, bit in KPF.items():
        if flags >> bit & 1:
            if name == "ANON_EXCLUSIVE" and not flags >> KPF["ANON"] & 1:
                name = "MAPPEDTODISK"
            out.append(name)
    return out


class RawPage:
    """What /proc says about one virtual page (all integers, no interpretation
    beyond the bit names).

    Attributes
    ----------
    entry : int
        The pagemap u64.
    present, exclusive_mapped, file : bool
        pagemap bits 63, 56, 61.
    pfn : int or None
    mapcount : int
        /proc/kpagecount (0 when not present).
    flags : int
        /proc/kpageflags (0 when not present).
    """

    __slots__ = ("entry", "present", "exclusive_mapped", "file", "pfn", "mapcount", "flags")

    def __init__(self, entry, mapcount, flags):
        self.entry = entry
        self.present = bool(entry & PM_PRESENT)
        self.exclusive_mapped = bool(entry & PM_EXCLUSIVE)
        self.file = bool(entry & PM_FILE)
        self.pfn = entry & PFN_MASK if self.present and not entry & PM_SWAP else None
        self.mapcount = mapcount
        self.flags = flags

    def has(self, name):
        """Is kpageflags bit ``KPF_<name>`` set?"""
        return bool(self.flags >> KPF[name] & 1)

    def as_dict(self):
        """Plain dict (for tables): the pagemap bits, mapcount and flag names."""
        return dict(pfn=self.pfn, present=self.present, pagemap_exclusive=self.exclusive_mapped,
                    pagemap_file=self.file, kpagecount=self.mapcount, flags=flag_names(self.flags))

    def __repr__(self):
        return (f"<RawPage pfn={self.pfn} cnt={self.mapcount} excl56={int(self.exclusive_mapped)} "
                f"file61={int(self.file)} {' '.join(flag_names(self.flags))}>")


def _pread_u64(path, index):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        b = os.pread(fd, 8, index * 8)
    finally:
        os.close(fd)
    return struct.unpack("<Q", b)[0] if len(b) == 8 else 0


def read_raw(pid, addr, page_size=4096):
    """Read pagemap, kpagecount and kpageflags for ``addr`` in process ``pid``.

    Raises
    ------
    OSError
        When the process is gone or /proc is not readable (not root).
    """
    entry = _pread_u64(f"/proc/{pid}/pagemap", addr // page_size)
    if not entry & PM_PRESENT or entry & PM_SWAP:
        return RawPage(entry, 0, 0)
    pfn = entry & PFN_MASK
    return RawPage(entry, _pread_u64("/proc/kpagecount", pfn), _pread_u64("/proc/kpageflags", pfn))


def vma_at(pid, addr):
    """The /proc/PID/maps line covering ``addr`` as (start, end, perms, path), or None."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi:
                return lo, hi, parts[1], parts[5].strip() if len(parts) > 5 else ""
    return None
