"""The user-facing verbs: what a program does, turned into kernel entry points.

A :class:`Process` is a handle (a pid and its kernel).  ``p.write(addr,
data)`` is a store as the CPU would do it: if the PTE is missing or
read-only the access faults into :func:`mmkit.memory.handle_mm_fault`
first.  Every access is checked against the VMAs before anything changes, so
a SIGSEGV or SIGBUS leaves the state exactly as it was.
"""

from .errors import InvalidArgument, KernelError, SIGBUS, SIGSEGV
from .filemap import do_truncate, fault_handler_name, file_read, file_write
from .folio import page_read, page_write
from .fork import dup_mmap
from .gup import FOLL_GET, FOLL_LONGTERM, FOLL_PIN, FOLL_WRITE, get_user_pages, gup_put_folio
from .madvise import do_madvise
from .memory import FAULT_FLAG_WRITE, handle_pte_fault
from .invariants import check_folio, check_pte
from .mm import _PMD_SHIFT, PAGE_SHIFT, check_range
from .mmap import do_mmap, do_munmap, exit_mmap
from .mprotect import mprotect_fixup
from .mremap import check_mremap_args, do_mremap
from .pageinfo import PAGE_SIZE

__all__ = ["Process", "Pin", "Ref", "Pipe", "FileHandle", "PROTS"]

#: prot strings -> (VM_READ, VM_WRITE)
PROTS = {"rw": (True, True), "r": (True, False), "none": (False, False)}
_MASK = ~(PAGE_SIZE - 1)


def _prot(prot):
    try:
        return PROTS[prot]
    except (KeyError, TypeError):
        raise InvalidArgument(f"prot must be one of {', '.join(map(repr, PROTS))}, not {prot!r}") from None


def _data(data):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"data must be bytes, not {type(data).__name__}")
    return bytes(data)


#: include/linux/fs.h: MAX_LFS_FILESIZE ((loff_t)LLONG_MAX on 64-bit), the largest
#: i_size of a tmpfs file; disk file systems set a smaller s_maxbytes (ext4 with
#: 4 KiB blocks: 16 TiB), which the model does not distinguish.
MAX_LFS_FILESIZE = (1 << 63) - 1


def check_file_size(nbytes):
    """EFBIG when a file would grow past MAX_LFS_FILESIZE (mm/filemap.c:
    generic_write_check_limits(); fs/attr.c: inode_newsize_ok())."""
    if nbytes > MAX_LFS_FILESIZE:
        raise KernelError("EFBIG", f"{nbytes} bytes is past the largest file size, MAX_LFS_FILESIZE "
                                   f"({MAX_LFS_FILESIZE} bytes)")


def _nbytes(n):
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InvalidArgument(f"byte count must be a non-negative int, not {n!r}")
    return n


class Process:
    """A process: ``mmap``, ``read``, ``write``, ``fork``... as a program
    would call them.  Obtain one from :meth:`Kernel.spawn` or :meth:`fork`."""

    __slots__ = ("kernel", "pid")

    def __init__(self, kernel, pid):
        self.kernel = kernel
        self.pid = pid

    def __repr__(self):
        t = self.kernel.tasks.get(self.pid)
        return f"<Process {self.pid} {t.name if t else '?'}{'' if t and t.alive else ' (gone)'}>"

    def __eq__(self, other):
        return isinstance(other, Process) and other.kernel is self.kernel and other.pid == self.pid

    def __hash__(self):
        return hash((id(self.kernel), self.pid))

    @property
    def name(self):
        return self.kernel.tasks[self.pid].name

    @property
    def alive(self):
        t = self.kernel.tasks.get(self.pid)
        return t is not None and t.alive

    def _live(self):
        """This process's task; raises InvalidArgument if it has exited."""
        t = self.kernel.tasks.get(self.pid)
        if t is None or not t.alive:
            return self.kernel._task(self)      # raises the right error
        return t

    @property
    def mm(self):
        """The model's mm_struct of this process (read it, don't change it)."""
        return self.kernel._task(self).mm

    # -- address space ---------------------------------------------------------
    def mmap(self, npages, prot="rw", shared=False, file=None, offset=0):
        """Map ``npages`` pages; returns the start address.

        Parameters
        ----------
        npages : int
            Positive.
        prot : {"rw", "r", "none"}
        shared : bool
            MAP_SHARED (anonymous shared memory is shmem) or MAP_PRIVATE.
        file : FileHandle, optional
            From :meth:`Kernel.open`; a private file mapping COWs on write.
        offset : int
            File offset in pages.
        """
        k = self.kernel
        task = k._task(self)
        if not isinstance(npages, int) or isinstance(npages, bool) or npages <= 0:
            raise InvalidArgument(f"npages must be a positive int, not {npages!r}")
        read, write = _prot(prot)
        f = None
        if file is not None:
            if not isinstance(file, FileHandle) or file.kernel is not k:
                raise InvalidArgument(f"file must be a FileHandle from this kernel's open(), not {file!r}")
            f = file._file
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise InvalidArgument(f"offset must be a non-negative number of pages, not {offset!r}")
        k.trace.begin(f"{task.name}.mmap({npages}, {prot!r}{', shared' if shared else ''}"
                      f"{', file=' + f.name if f else ''})")
        return do_mmap(k, task.mm, npages, read, write, bool(shared), f, offset).start

    def munmap(self, addr, npages):
        """Unmap ``[addr, addr+npages)``; unmapped holes are fine."""
        k = self.kernel
        task = k._task(self)
        check_range(addr, npages)
        k.trace.begin(f"{task.name}.munmap({addr:#x}, {npages})")
        do_munmap(k, task.mm, addr, npages)

    def mprotect(self, addr, npages, prot):
        """Change the protection of ``[addr, addr+npages)`` (ENOMEM on holes)."""
        k = self.kernel
        task = k._task(self)
        check_range(addr, npages)
        read, write = _prot(prot)
        k.trace.begin(f"{task.name}.mprotect({addr:#x}, {npages}, {prot!r})")
        mprotect_fixup(k, task.mm, addr, addr + npages * PAGE_SIZE, read, write)
        if k.check:
            k.after_range(task.mm, addr, addr + npages * PAGE_SIZE)

    def mremap(self, addr, old_npages, new_npages, maymove=False, fixed=None, dontunmap=False):
        """mremap(): shrink, grow or move ``[addr, addr+old_npages)``; returns
        the address of the mapping now (see :mod:`mmkit.mremap`).

        Parameters
        ----------
        addr : int
            Page-aligned start of the old range, inside one VMA.
        old_npages, new_npages : int
            Old and new lengths in pages (``new_npages`` > 0; ``old_npages``
            0 is refused for private mappings, as the kernel does).
        maymove : bool
            MREMAP_MAYMOVE: the kernel may move the mapping to grow it.
        fixed : int, optional
            MREMAP_FIXED: move to this address, unmapping what is there
            first (needs ``maymove``).
        dontunmap : bool
            MREMAP_DONTUNMAP: move the pages, keep the old VMA (empty);
            needs ``maymove`` and the same length.

        Raises
        ------
        InvalidArgument
            A value of the wrong type, or negative.
        KernelError
            ``EINVAL`` (unaligned address, ``new_npages`` 0, bad flag
            combination, target past TASK_SIZE or overlapping the source),
            ``EFAULT`` (no VMA at ``addr``, or the old range leaves it),
            ``ENOMEM`` (cannot grow in place without ``maymove``; no room).
            Nothing has changed then.

        Examples
        --------
        >>> from mmkit import Kernel
        >>> k = Kernel()
        >>> p = k.spawn()
        >>> a = p.mmap(4)
        >>> p.write(a, b"x")
        >>> b = p.mremap(a, 4, 8, maymove=True)
        >>> p.read(b, 1)
        b'x'
        """
        k = self.kernel
        task = k._task(self)
        flags = check_mremap_args(addr, old_npages, new_npages, maymove, fixed, dontunmap)
        opts = "".join([", maymove" if maymove else "", f", fixed={fixed:#x}" if fixed is not None else "",
                        ", dontunmap" if dontunmap else ""])
        k.trace.begin(f"{task.name}.mremap({addr:#x}, {old_npages}, {new_npages}{opts})")
        return do_mremap(k, task.mm, addr, old_npages, new_npages, flags, fixed or 0)

    def madvise(self, addr, npages, advice):
        """madvise(): ``"dontneed"``, ``"dontfork"``, ``"dofork"``,
        ``"wipeonfork"``, ``"keeponfork"``, ``"hugepage"`` (MADV_HUGEPAGE),
        ``"nohugepage"`` (MADV_NOHUGEPAGE), ``"collapse"`` (MADV_COLLAPSE,
        v6.1: :mod:`mmkit.khugepaged`)."""
        k = self.kernel
        task = k._task(self)
        check_range(addr, npages)
        k.trace.begin(f"{task.name}.madvise({addr:#x}, {npages}, {advice!r})")
        do_madvise(k, task.mm, addr, addr + npages * PAGE_SIZE, advice)

    # -- access --------------------------------------------------------------
    def _check_access(self, mm, addr, n, write):
        """The access checks of the page-fault handler, for every page
        touched, before anything changes: no VMA or wrong protection is
        SIGSEGV, a file page beyond EOF is SIGBUS."""
        page = addr & _MASK
        end = addr + n
        if end <= page + PAGE_SIZE and n:
            # one page, the common case: anon memory with the right protection
            vma = mm.find_vma(page)
            if vma is not None and vma.file is None and vma.read and (vma.write or not write):
                return ((page, vma),)
        vmas = []
        while page < end:
            vma = mm.find_vma(page)
            if vma is None:
                self._signal(SIGSEGV, "bad_area", f"no mapping at {page:#x}", page, write)
            if write and not vma.write:
                self._signal(SIGSEGV, "access_error", f"write to {page:#x} in a {vma.prot!r} mapping", page, write)
            if not vma.read:
                self._signal(SIGSEGV, "access_error", f"access to {page:#x} in a PROT_NONE mapping", page, write)
            if vma.file is not None and vma.linear_page_index(page) >= vma.file.npages:
                self._signal(SIGBUS, fault_handler_name(vma.file),
                             f"{page:#x} maps page {vma.linear_page_index(page)} of {vma.file.name!r}, "
                             f"beyond EOF ({vma.file.npages} pages)", page, write)
            vmas.append((page, vma))
            page += PAGE_SIZE
        return vmas

    def _signal(self, sig, func, why, page, write):
        """Record the failed access in the trace (nothing else changes) and raise."""
        trace = self.kernel.trace
        trace.begin("{}.{}({:#x})", self.name, "write" if write else "read", page)
        trace.emit(func, sig.signal if sig is SIGBUS else "SIGSEGV",
                   why + (" (arch/x86/mm/fault.c: do_user_addr_fault())" if sig is SIGSEGV else
                          " (VM_FAULT_SIGBUS)"))
        raise sig(why, page)

    def write(self, addr, data):
        """Store ``data`` at ``addr`` (any alignment, may span pages)."""
        k = self.kernel
        task = k.tasks.get(self.pid)            # self._live(), inlined: the hot path of make bench
        if task is None or not task.alive:
            task = k._task(self)
        if type(data) is not bytes:
            data = _data(data)
        if type(addr) is not int or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        mm = task.mm
        n = len(data)
        page = addr & _MASK
        vma = mm.find_vma(page) if n and addr + n <= page + PAGE_SIZE else None
        if vma is not None and vma.file is None and vma.write and vma.read:
            # one page of writable anon memory: the common case
            k.trace.begin("{}.write({:#x}, {} bytes)", task.name, addr, n)
            self._store(k, mm, vma, page, addr - page, data)
            return
        pages = self._check_access(mm, addr, n, True)
        k.trace.begin("{}.write({:#x}, {} bytes)", task.name, addr, n)
        pos = 0
        for page, vma in pages:
            off = addr + pos - page
            c = min(n - pos, PAGE_SIZE - off)
            self._store(k, mm, vma, page, off, data[pos:pos + c])
            pos += c

    def _store(self, k, mm, vma, page, off, chunk):
        """One page's part of a CPU store: walk the table, fault if the PTE
        is missing or read-only (handle_pte_fault()), write the bytes, set
        the PTE dirty, then check what changed."""
        table = mm.pgd.get(page >> _PMD_SHIFT)        # the CPU's table walk (mm.pte(), inlined)
        e = table[(page >> PAGE_SHIFT) & 511] if table is not None else None
        old = None
        if e is None or not e.write:
            old = e.folio if e is not None else None
            e = handle_pte_fault(k, vma, page, e, FAULT_FLAG_WRITE)   # the access walked the table
        folio = e.folio
        folio.data = page_write(folio.data, off, chunk)
        e.dirty = True
        if not folio.anon:
            folio.dirty = True
        if k.check:
            check_pte(k, vma, e)
            if old is not None and old is not folio:
                check_folio(k, old)

    def read(self, addr, n):
        """Load ``n`` bytes from ``addr``; returns bytes."""
        k = self.kernel
        task = self._live()
        n = _nbytes(n)
        if type(addr) is not int or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        mm = task.mm
        pages = self._check_access(mm, addr, n, False)
        k.trace.begin("{}.read({:#x}, {} bytes)", task.name, addr, n)
        out = []
        pos = 0
        for page, vma in pages:
            e = mm.pte(page)
            if e is None:
                e = handle_pte_fault(k, vma, page, None, 0)
            off = addr + pos - page
            c = min(n - pos, PAGE_SIZE - off)
            out.append(page_read(e.folio.data, off, c))
            pos += c
        return b"".join(out)

    # -- process life -----------------------------------------------------------
    def fork(self, name=None):
        """fork(): a child with a copy of this address space (see mmkit.fork)."""
        from .kernel import Task
        k = self.kernel
        task = k._task(self)
        if name is not None and not isinstance(name, str):
            raise InvalidArgument(f"name must be a str, not {type(name).__name__}")
        k.trace.begin(f"{task.name}.fork({name!r})")
        pid = k.next_pid()
        child = Task(pid, name or f"{task.name}-child{pid}", None)
        child.mm = dup_mmap(k, task.mm, child)     # checks each page it shares or copies
        k.tasks[pid] = child
        return Process(k, pid)

    def exit(self):
        """exit(): tear down the address space.  Pins and pipes survive: they
        belong to devices and pipe readers, not to the address space."""
        k = self.kernel
        task = k._task(self)
        k.trace.begin(f"{task.name}.exit()")
        exit_mmap(k, task.mm)
        task.alive = False

    # -- GUP ------------------------------------------------------------------
    def pin(self, addr, npages=1, write=False, longterm=True, fast=False):
        """pin_user_pages(): FOLL_PIN ``npages`` pages, as a device driver
        would before DMA (io_uring fixed buffers: write=True, longterm=True;
        O_DIRECT write(2): write=False, longterm=False).  Returns a Pin."""
        k = self.kernel
        task = k._task(self)
        check_range(addr, npages)
        flags = FOLL_PIN | (FOLL_WRITE if write else 0) | (FOLL_LONGTERM if longterm else 0)
        k.trace.begin(f"{task.name}.pin({addr:#x}, {npages}, write={bool(write)}, longterm={bool(longterm)}"
                      f"{', fast' if fast else ''})")
        folios = get_user_pages(k, task.mm, addr, npages, flags, fast)
        h = self._hold("pin", flags, folios, addr)
        if k.check:
            k.after_range(task.mm, addr, addr + npages * PAGE_SIZE)
            k.after_folios(folios)
        return Pin(k, h.id)

    def get_user_pages(self, addr, npages=1, write=False):
        """get_user_pages(): FOLL_GET references (a plain refcount +1 each).
        Returns a Ref."""
        k = self.kernel
        task = k._task(self)
        check_range(addr, npages)
        flags = FOLL_GET | (FOLL_WRITE if write else 0)
        k.trace.begin(f"{task.name}.get_user_pages({addr:#x}, {npages}{', write' if write else ''})")
        folios = get_user_pages(k, task.mm, addr, npages, flags)
        h = self._hold("ref", flags, folios, addr)
        return Ref(k, h.id)

    def vmsplice(self, addr, n):
        """vmsplice(2) ``n`` bytes at ``addr`` into a new pipe: the pipe
        buffers hold FOLL_GET references to the pages (fs/splice.c:
        iter_to_pipe() -> iov_iter_get_pages2()).  Returns a Pipe."""
        k = self.kernel
        task = k._task(self)
        n = _nbytes(n)
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        if n == 0:
            raise InvalidArgument("vmsplice of 0 bytes")
        first = addr & _MASK
        npages = (addr + n - first + PAGE_SIZE - 1) // PAGE_SIZE
        k.trace.begin(f"{task.name}.vmsplice({addr:#x}, {n})")
        folios = get_user_pages(k, task.mm, first, npages, FOLL_GET, fast=True)
        bufs, pos = [], addr
        for i, f in enumerate(folios):
            off = pos - (first + i * PAGE_SIZE)
            ln = min(addr + n - pos, PAGE_SIZE - off)
            bufs.append([f, off, ln])
            pos += ln
        h = Holder_(k, "pipe", FOLL_GET, bufs, self.pid, addr)
        return Pipe(k, h.id)

    def _hold(self, kind, flags, folios, addr):
        return Holder_(self.kernel, kind, flags, [[f, 0, PAGE_SIZE] for f in folios], self.pid, addr)


def Holder_(k, kind, flags, bufs, owner, addr):
    from .kernel import Holder
    h = Holder(k.next_holder_id(), kind, flags, bufs, owner, addr)
    k.holders[h.id] = h
    return h


class _Held:
    """Common part of Pin, Ref and Pipe handles."""

    __slots__ = ("kernel", "id")
    kind = ""

    def __init__(self, kernel, id):
        self.kernel = kernel
        self.id = id

    @property
    def _h(self):
        h = self.kernel.holders.get(self.id)
        if h is None:
            raise InvalidArgument(f"{self.kind} {self.id} does not exist in this state (restored snapshot?)")
        if h.released:
            raise InvalidArgument(f"{self.kind} {self.id} was already released")
        return h

    @property
    def active(self):
        h = self.kernel.holders.get(self.id)
        return h is not None and not h.released

    @property
    def pfns(self):
        """The pfns of the pages held."""
        return [f.pfn for f in self._h.folios()]

    def _read(self, n, offset=0):
        n = _nbytes(n)
        bufs = self._h.buffers
        if not isinstance(offset, int) or offset < 0 or offset + n > len(bufs) * PAGE_SIZE:
            raise InvalidArgument(f"offset {offset!r} + {n} bytes is outside the {len(bufs)} page(s) held")
        out = bytearray()
        while n > 0:
            i, o = divmod(offset, PAGE_SIZE)
            c = min(n, PAGE_SIZE - o)
            out += page_read(bufs[i][0].data, o, c)
            offset += c
            n -= c
        return bytes(out)

    def _release(self, verb):
        k = self.kernel
        h = self._h
        k.trace.begin(f"{self.kind}.{verb}()")
        for f in h.folios():
            if h.kind == "pin" and h.flags & FOLL_WRITE and not f.zero:
                f.dirty = True          # unpin_user_pages_dirty_lock()
            gup_put_folio(k, f, h.flags)
        h.released = True
        k.trace.emit("unpin_user_pages" if h.kind == "pin" else "put_page", f"{len(h.buffers)} page(s) released",
                     "")
        if k.check:
            k.after_folios([f for f in h.folios() if f.refcount > 0])


class Pin(_Held):
    """A FOLL_PIN pin: what a device doing DMA holds.

    ``read(n)`` is what the device reads, ``write(data)`` what it writes
    (only for write pins); ``unpin()`` releases (twice is an error).
    """

    kind = "pin"

    def read(self, n, offset=0):
        """What the device reads through the pin."""
        return self._read(n, offset)

    def write(self, data, offset=0):
        """A device write (DMA) into the pinned pages."""
        h = self._h
        data = _data(data)
        if not h.flags & FOLL_WRITE:
            raise InvalidArgument("this pin is read-only (no FOLL_WRITE): the device may not write")
        if not isinstance(offset, int) or offset < 0 or offset + len(data) > len(h.buffers) * PAGE_SIZE:
            raise InvalidArgument(f"offset {offset!r} + {len(data)} bytes is outside the pinned page(s)")
        self.kernel.trace.begin(f"pin.write({len(data)} bytes)")
        pos = 0
        while pos < len(data):
            i, o = divmod(offset + pos, PAGE_SIZE)
            c = min(len(data) - pos, PAGE_SIZE - o)
            f = h.buffers[i][0]
            f.data = page_write(f.data, o, data[pos:pos + c])
            pos += c

    def unpin(self):
        """unpin_user_pages() (dirtying written pages first)."""
        self._release("unpin")

    def __repr__(self):
        return f"<Pin {self.id}{'' if self.active else ' (unpinned)'}>"


class Ref(_Held):
    """A FOLL_GET reference: ``read(n)``, ``put()``."""

    kind = "ref"

    def read(self, n, offset=0):
        """Read the referenced pages."""
        return self._read(n, offset)

    def put(self):
        """put_page() on every page."""
        self._release("put")


class Pipe(_Held):
    """A pipe filled by vmsplice(): its buffers reference user pages.

    ``read(n)`` consumes up to ``n`` bytes, reading the pages *now*, and
    drops each buffer's reference once it is consumed.
    """

    kind = "pipe"

    def read(self, n):
        """Read and consume up to ``n`` bytes from the pipe."""
        n = _nbytes(n)
        k = self.kernel
        h = self._h
        k.trace.begin(f"pipe.read({n})")
        out = bytearray()
        while n > 0 and h.buffers:
            buf = h.buffers[0]
            f, off, ln = buf
            c = min(n, ln)
            out += page_read(f.data, off, c)
            n -= c
            if c == ln:
                h.buffers.pop(0)
                gup_put_folio(k, f, FOLL_GET)
                k.trace.emit("pipe_buf_release", "put_page", "buffer consumed", f.pfn)
            else:
                buf[1], buf[2] = off + c, ln - c
        if not h.buffers:
            h.released = True
        return bytes(out)

    def close(self):
        """Close the pipe, dropping the references still held."""
        if self.active:
            self._release("close")

    @property
    def pending(self):
        """Bytes still in the pipe."""
        h = self.kernel.holders.get(self.id)
        return 0 if h is None or h.released else sum(b[2] for b in h.buffers)


class FileHandle:
    """An open file: ``read(off, n)``, ``write(off, data)``, ``truncate(npages)``."""

    __slots__ = ("kernel", "id")

    def __init__(self, kernel, id):
        self.kernel = kernel
        self.id = id

    @property
    def _file(self):
        f = self.kernel.files.get(self.id)
        if f is None:
            raise InvalidArgument(f"file {self.id} does not exist in this state")
        return f

    @property
    def name(self):
        return self._file.name

    @property
    def size(self):
        """i_size in bytes."""
        return self._file.size

    @property
    def npages(self):
        return self._file.npages

    def __repr__(self):
        return f"<FileHandle {self.name!r} {self.npages} pages>"

    def read(self, off, n):
        """pread(2): up to ``n`` bytes at byte offset ``off`` (short at EOF)."""
        _nbytes(off)
        n = _nbytes(n)
        self.kernel.trace.begin(f"{self.name}.read({off}, {n})")
        return file_read(self.kernel, self._file, off, n)

    def write(self, off, data):
        """pwrite(2): ``data`` at byte offset ``off`` (extends the file; EFBIG
        past ``MAX_LFS_FILESIZE``, as generic_write_check_limits() answers)."""
        _nbytes(off)
        data = _data(data)
        check_file_size(off + len(data))
        self.kernel.trace.begin(f"{self.name}.write({off}, {len(data)} bytes)")
        file_write(self.kernel, self._file, off, data)

    def truncate(self, npages):
        """ftruncate(2) to ``npages`` pages (see mmkit.filemap.do_truncate: shmem_setattr()
        for shmem, truncate_setsize() for a disk file).

        Past ``MAX_LFS_FILESIZE`` it fails with EFBIG, as inode_newsize_ok() does."""
        if not isinstance(npages, int) or isinstance(npages, bool) or npages < 0:
            raise InvalidArgument(f"npages must be a non-negative int, not {npages!r}")
        check_file_size(npages * PAGE_SIZE)
        k = self.kernel
        k.trace.begin(f"{self.name}.truncate({npages})")
        do_truncate(k, self._file, npages)
        if k.check:
            k.after_folios(list(self._file.pages.values()))
