"""mmkit.live: the scenario API of :class:`mmkit.Kernel`, on the running Linux kernel.

>>> from mmkit.live import LiveKernel, available
>>> ok, why = available()
>>> if ok:                                                  # doctest: +SKIP
...     with LiveKernel() as k:
...         p = k.spawn("parent"); a = p.mmap(1); p.write(a, b"hello")
...         c = p.fork("child")
...         print(k.page(p, a).mapcount, k.page(p, a).exclusive)
2 False

Each modelled process is a real process (a C worker compiled on first use,
pinned to one CPU, driven over a socket with a timeout on every request).
Pages are observed through /proc/PID/pagemap, /proc/kpagecount and
/proc/kpageflags; pins are taken with io_uring fixed buffers and O_DIRECT,
references with vmsplice.  What user space cannot see (refcount, pincount,
a PTE's write bit in general) is reported as ``None``; see
:mod:`mmkit.live.kernel` for the exact rules and :mod:`mmkit.live.holders`
for how each kind of pin is realised.

Needs Linux >= 5.19, root and gcc; :func:`available` says what is missing,
and ``LiveKernel()`` raises :class:`LiveUnavailable` with the same reason.
Large folios: ``LiveKernel(thp={"64kB": "always"})`` / ``k.thp`` set the
THP policy in sysfs for the kernel's lifetime and always restore it;
``k.page()`` reports each page's folio order, head and PMD mapping (see
:mod:`mmkit.live.thp`).  Long-term writable pins also need io_uring (``available("io_uring")``);
without it they raise :class:`LiveUnsupported` and everything else runs.
"""

from ._chan import LiveWorkerError
from .availability import LiveUnavailable, available
from .holders import LivePin, LivePipe, LiveRef, LiveUnsupported
from .kernel import LiveKernel, LiveMigrateResult, LivePageInfo
from .process import LiveFile, LiveProcess
from .observe import RawPage
from .thp import ThpControl

__all__ = ["LiveKernel", "LiveProcess", "LiveFile", "LivePin", "LiveRef", "LivePipe",
           "LiveMigrateResult", "LivePageInfo", "RawPage", "ThpControl", "LiveUnavailable", "LiveUnsupported", "LiveWorkerError",
           "available"]
