"""mmkit: who uses a page in Linux -- a kernel-faithful, steppable model.

>>> from mmkit import Kernel
>>> k = Kernel(era="6.18")
>>> p = k.spawn("parent")
>>> a = p.mmap(1)
>>> p.write(a, b"hi")
>>> k.page(p, a).refcount, k.page(p, a).exclusive
(1, True)
"""

from .era import ERAS, Era, era
from .errors import InvalidArgument, InvariantViolation, KernelError, MMError, SIGBUS, SIGSEGV, Signal
from .kernel import Kernel
from .migrate import MigrateResult
from .pageinfo import GUP_PIN_COUNTING_BIAS, PAGE_SIZE, PageInfo
from .process import FileHandle, Pin, Pipe, Process, Ref
from .scenario import Scenario, Step

__all__ = ["Kernel", "Process", "Pin", "Ref", "Pipe", "FileHandle", "PageInfo", "MigrateResult",
           "Era", "ERAS", "era", "Scenario", "Step", "MMError", "InvalidArgument", "KernelError",
           "Signal", "SIGSEGV", "SIGBUS", "InvariantViolation", "PAGE_SIZE", "GUP_PIN_COUNTING_BIAS"]
__version__ = "0.1.0"
