"""Errors and signals raised by the model.

Three families, all subclasses of :class:`MMError` so that ``except MMError``
catches whatever the model refuses:

* :class:`InvalidArgument` (also a ``ValueError``): the caller asked for
  something malformed (unaligned address, unknown prot string, negative
  size, unpin twice, unknown era).  The model state is left exactly as it was.
* :class:`KernelError`: a system call failed the way the kernel would fail it
  (``EFAULT`` for GUP on an unmapped range, ``EINVAL`` for MADV_WIPEONFORK on a
  file mapping...).  ``errno`` holds the symbolic name.  State is unchanged.
* :class:`Signal` (:class:`SIGSEGV`, :class:`SIGBUS`): a user-space access
  faulted and the kernel would deliver this signal.  The faulting access is
  checked before anything is changed, so the state is unchanged here too.

:class:`InvariantViolation` is different: it means the *model* reached a
state the kernel never reaches.  Each invariant has its own subclass and a
plain-words explanation (see :mod:`mmkit.invariants`).
"""

__all__ = ["MMError", "InvalidArgument", "KernelError", "Signal", "SIGSEGV",
           "SIGBUS", "InvariantViolation"]


class MMError(Exception):
    """Base class of everything the model raises on purpose."""


class InvalidArgument(MMError, ValueError):
    """A malformed request; nothing was changed."""


class KernelError(MMError):
    """A system call failed with ``errno`` (a name such as ``"EFAULT"``)."""

    def __init__(self, errno, message):
        super().__init__(f"{errno}: {message}")
        self.errno = errno


class Signal(MMError):
    """A faulting user access; the kernel would send this signal."""

    signal = "SIG?"

    def __init__(self, message, addr=None):
        super().__init__(f"{self.signal}: {message}")
        self.addr = addr


class SIGSEGV(Signal):
    """Access to an address with no VMA, or against the VMA's protection."""

    signal = "SIGSEGV"


class SIGBUS(Signal):
    """Access to a file page at or beyond EOF (filemap_fault: VM_FAULT_SIGBUS)."""

    signal = "SIGBUS"


class InvariantViolation(MMError, AssertionError):
    """The model reached a state the kernel never reaches.

    Attributes
    ----------
    name : str
        Short name of the invariant (``"refcount_covers_holders"``...).
    explanation : str
        What the invariant means, in plain words.
    detail : str
        What was found.
    """

    name = "invariant"
    explanation = ""

    def __init__(self, detail):
        super().__init__(f"{self.name}: {detail}\n  why it must hold: {self.explanation}")
        self.detail = detail
