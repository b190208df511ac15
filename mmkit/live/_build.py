"""Compile the C worker (``worker.c``) once, on first use, into a cache dir.

The binary's name carries a hash of the source and compiler flags, so an
edited ``worker.c`` is rebuilt and concurrent sessions never overwrite a
binary another one is running (the new file is renamed into place).
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

__all__ = ["worker_binary", "BuildError", "WORKER_SOURCE"]

WORKER_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.c")
_CFLAGS = ["-O2", "-Wall", "-std=gnu11"]
_cached = None


class BuildError(RuntimeError):
    """The worker could not be compiled (no gcc, or a compiler error)."""


def _cache_dir():
    """``$MMKIT_CACHE``, else ``$XDG_CACHE_HOME/mmkit``, else ``~/.cache/mmkit``."""
    d = os.environ.get("MMKIT_CACHE")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "mmkit")
    try:
        os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = os.path.join(tempfile.gettempdir(), f"mmkit-cache-{os.getuid()}")
    os.makedirs(d, exist_ok=True)
    return d


def worker_binary(timeout=60):
    """Path of the compiled worker, compiling it if needed.

    Parameters
    ----------
    timeout : float
        Seconds allowed for gcc.

    Returns
    -------
    str
        An executable path.

    Raises
    ------
    BuildError
        gcc is missing or failed; the message carries its output.
    """
    global _cached
    if _cached and os.path.exists(_cached):
        return _cached
    with open(WORKER_SOURCE, "rb") as f:
        src = f.read()
    cc = os.environ.get("CC", "gcc")
    tag = hashlib.sha256(src + " ".join([cc] + _CFLAGS).encode()).hexdigest()[:16]
    path = os.path.join(_cache_dir(), f"mmkit-live-worker-{tag}")
    if not os.path.exists(path):
        if shutil.which(cc) is None:
            raise BuildError(f"no C compiler ({cc!r}) to build the live worker; install gcc "
                             "(apt-get install gcc) or set CC")
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", dir=os.path.dirname(path))
        os.close(fd)
        try:
            r = subprocess.run([cc, *_CFLAGS, "-o", tmp, WORKER_SOURCE], capture_output=True,
                               text=True, timeout=timeout)
            if r.returncode != 0:
                raise BuildError(f"{cc} failed to build {WORKER_SOURCE}:\n{r.stderr.strip()}")
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)
        except subprocess.TimeoutExpired as e:
            raise BuildError(f"{cc} did not finish within {timeout} s") from e
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    _cached = path
    return path
