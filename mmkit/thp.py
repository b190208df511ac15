"""The THP policy: what /sys/kernel/mm/transparent_hugepage says.

``k.thp`` mirrors the sysfs directory: the top-level ``enabled``
(``always`` / ``madvise`` / ``never``) and, since v6.8 (19eaf44954df "mm:
thp: support allocation of anonymous multi-size THP"), one
``hugepages-<size>kB/enabled`` per size (``always`` / ``madvise`` /
``inherit`` / ``never``).  Defaults are a stock kernel's: top level
``madvise`` (as on this machine; the Kconfig default is
TRANSPARENT_HUGEPAGE_MADVISE or _ALWAYS), 2048kB ``inherit``, every other
size ``never`` (mm/huge_memory.c: hugepage_init_sysfs() sets
``huge_anon_orders_inherit = BIT(PMD_ORDER)``).

The masks the fault path reads are kept as the kernel keeps them
(``huge_anon_orders_always``, ``huge_anon_orders_madvise``,
``huge_anon_orders_inherit``) and combined as in
include/linux/huge_mm.h: thp_vma_allowable_orders()::

    mask = always
    if VM_HUGEPAGE: mask |= madvise
    if enabled == "always" or (VM_HUGEPAGE and enabled != "never"): mask |= inherit

``use_zero_page`` mirrors /sys/kernel/mm/transparent_hugepage/use_zero_page
(default 1, TRANSPARENT_HUGEPAGE_USE_ZERO_PAGE_FLAG set in
transparent_hugepage_flags): a read fault that may map a PMD maps the huge
zero folio when it is 1 and allocates a THP when it is 0
(mm/huge_memory.c: do_huge_pmd_anonymous_page() ->
transparent_hugepage_use_zero_page()).  :meth:`ThpPolicy.read` and
:meth:`ThpPolicy.write` take the knob's path relative to the directory,
as the live backend's ``k.thp`` does, so one scenario drives both.
"""

from .errors import InvalidArgument

__all__ = ["ThpPolicy", "PMD_ORDER", "SIZES", "size_order"]

#: HPAGE_PMD_ORDER on x86-64 with 4 KiB pages.
PMD_ORDER = 9
#: The anon sizes sysfs offers on x86-64 (THP_ORDERS_ALL_ANON: orders 2..9;
#: order 1 is excluded for anon memory).
SIZES = ("16kB", "32kB", "64kB", "128kB", "256kB", "512kB", "1024kB", "2048kB")
_TOP = ("always", "madvise", "never")
_PER_SIZE = ("always", "madvise", "inherit", "never")


def size_order(size):
    """``"64kB"`` -> 4."""
    return (int(size[:-2]) // 4).bit_length() - 1


class ThpPolicy:
    """``k.thp``: /sys/kernel/mm/transparent_hugepage of one model kernel.

    Examples
    --------
    >>> from mmkit import Kernel
    >>> k = Kernel()
    >>> k.thp.enabled, k.thp.get("2048kB"), k.thp.get("64kB")
    ('madvise', 'inherit', 'never')
    >>> k.thp.set("64kB", "always")
    >>> k.thp.get("64kB")
    'always'
    """

    __slots__ = ("_enabled", "_sizes", "_per_size", "always_mask", "madvise_mask", "mthp", "_use_zero_page")

    def __init__(self, mthp=True):
        self.mthp = mthp
        self._sizes = SIZES if mthp else ("2048kB",)
        self._per_size = {s: ("inherit" if s == "2048kB" else "never") for s in self._sizes}
        self._enabled = "madvise"
        self._use_zero_page = True
        self._recompute()

    @property
    def sizes(self):
        """The sizes with a ``hugepages-<size>kB`` directory (only 2048kB before v6.8)."""
        return self._sizes

    @property
    def enabled(self):
        """The top-level ``enabled``: "always", "madvise" or "never"."""
        return self._enabled

    @enabled.setter
    def enabled(self, value):
        if not isinstance(value, str) or value not in _TOP:
            raise InvalidArgument(f"transparent_hugepage/enabled takes one of {', '.join(_TOP)}, not {value!r}")
        self._enabled = value
        self._recompute()

    @property
    def use_zero_page(self):
        """``use_zero_page``: True (the default, 1) lets a read fault map the
        huge zero folio by a PMD; False (0) makes it allocate a THP."""
        return self._use_zero_page

    @use_zero_page.setter
    def use_zero_page(self, value):
        if value not in (0, 1, "0", "1") or isinstance(value, float):
            raise InvalidArgument(f"transparent_hugepage/use_zero_page takes 0 or 1, not {value!r}")
        self._use_zero_page = value in (1, "1")      # True == 1: a bool is accepted too

    def read(self, rel):
        """The value of a knob by its path under the sysfs directory, as the
        file reads: ``"enabled"`` (``"madvise"``), ``"hugepages-64kB/enabled"``,
        ``"use_zero_page"`` (``"1"``)."""
        if rel == "enabled":
            return self._enabled
        if rel == "use_zero_page":
            return "1" if self._use_zero_page else "0"
        size = self._knob_size(rel)
        return self._per_size[size]

    def write(self, rel, value):
        """Write a knob by its path under the sysfs directory (the live
        backend's ``k.thp.write()``): ``"enabled"``,
        ``"hugepages-<size>/enabled"`` or ``"use_zero_page"``.

        Raises
        ------
        InvalidArgument
            For another path or a value the knob refuses; nothing changes.
        """
        if rel == "enabled":
            self.enabled = value
        elif rel == "use_zero_page":
            self.use_zero_page = value
        else:
            self.set(self._knob_size(rel), value)

    def _knob_size(self, rel):
        if isinstance(rel, str) and rel.startswith("hugepages-") and rel.endswith("/enabled"):
            size = rel[len("hugepages-"):-len("/enabled")]
            self._check_size(size)
            return size
        raise InvalidArgument(f"no THP knob {rel!r}; the model has enabled, use_zero_page and "
                              f"hugepages-<size>/enabled for sizes {', '.join(self._sizes)}")

    def get(self, size):
        """The ``hugepages-<size>/enabled`` value of ``size`` ("2048kB"...)."""
        self._check_size(size)
        return self._per_size[size]

    def set(self, size, value):
        """Write ``hugepages-<size>/enabled`` (mm/huge_memory.c: anon_enabled_store()).

        Raises
        ------
        InvalidArgument
            For a size without a directory or a value not in
            always/madvise/inherit/never; nothing changes.
        """
        self._check_size(size)
        if not isinstance(value, str) or value not in _PER_SIZE:
            raise InvalidArgument(f"hugepages-{size}/enabled takes one of {', '.join(_PER_SIZE)}, not {value!r}")
        if not self.mthp:
            raise InvalidArgument("no per-size THP control before v6.8 (19eaf44954df): "
                                  "set k.thp.enabled instead")
        self._per_size[size] = value
        self._recompute()

    def _check_size(self, size):
        if not isinstance(size, str) or size not in self._sizes:
            raise InvalidArgument(f"no hugepages-{size} directory; sizes are {', '.join(self._sizes)}")

    def _recompute(self):
        always = madvise = inherit = 0
        for size, v in self._per_size.items():
            bit = 1 << size_order(size)
            if v == "always":
                always |= bit
            elif v == "madvise":
                madvise |= bit
            elif v == "inherit":
                inherit |= bit
        if not self.mthp:          # one size, following the top level
            always, madvise, inherit = 0, 0, 1 << PMD_ORDER
        top = self._enabled
        #: orders allowed in any VMA (no VM_NOHUGEPAGE)
        self.always_mask = always | (inherit if top == "always" else 0)
        #: orders allowed on top of those in a VM_HUGEPAGE VMA
        self.madvise_mask = madvise | (inherit if top != "never" else 0)

    def orders(self, vma):
        """thp_vma_allowable_orders() for a private anonymous VMA: the bit
        mask of allowed orders (0 under VM_NOHUGEPAGE: vma_thp_disabled())."""
        if vma.nohugepage or vma.file is not None or vma.shared:
            return 0
        return self.always_mask | (self.madvise_mask if vma.hugepage else 0)

    def __repr__(self):
        per = " ".join(f"{s}={v}" for s, v in self._per_size.items() if v != "never")
        zero = "" if self._use_zero_page else " use_zero_page=0"
        return f"<thp enabled={self._enabled} {per}{zero}>"

    def state(self):
        """(enabled, {size: value}) -- for snapshots and the live backend."""
        return self._enabled, dict(self._per_size)
