"""Trace events: which kernel function ran, what it read, what it decided.

Every modelled kernel function reports its decision through
:meth:`Trace.emit`, e.g. ``do_wp_page: page not exclusive, refcount 2 > 1 ->
wp_page_copy``.  Events are kept as plain tuples and formatted only when read,
so tracing stays cheap.  Long runs can turn tracing into counting
(``mode="count"``) or off.
"""

from collections import Counter

__all__ = ["Trace", "TraceEvent"]


class TraceEvent:
    """One decision of one kernel function.

    Attributes
    ----------
    op : int
        Number of the user-level operation (``p.write``, ``p.fork``...) that
        led to it; ops are counted from 1.
    func : str
        The kernel function, e.g. ``"do_wp_page"``.
    decision : str
        What it decided, e.g. ``"wp_page_copy"``.
    reason : str
        Why, with the counters it read.
    pfn : int or None
        The page concerned, if any.
    """

    __slots__ = ("op", "func", "decision", "reason", "pfn")

    def __init__(self, op, func, decision, reason, pfn, args=()):
        if args:
            decision, reason = decision.format(*args), reason.format(*args)
        self.op, self.func, self.decision, self.reason, self.pfn = op, func, decision, reason, pfn

    def __str__(self):
        if not self.decision:
            return f"{self.func}: {self.reason}"
        if not self.reason:
            return f"{self.func}: -> {self.decision}"
        return f"{self.func}: {self.reason} -> {self.decision}"

    def __repr__(self):
        return f"<TraceEvent op={self.op} {self}>"


class _OpNames:
    """op number -> name, read like a dict.  Names are kept in a list in op
    order as (format, args) and formatted only when read."""

    def __init__(self):
        self.base = 1           # op number of names[0]
        self.names = []
        self.args = []

    def __contains__(self, op):
        return self.base <= op < self.base + len(self.names)

    def __getitem__(self, op):
        if op not in self:
            raise KeyError(op)
        name, args = self.names[op - self.base], self.args[op - self.base]
        return name.format(*args) if args else name

    def get(self, op, default=None):
        return self[op] if op in self else default

    def __iter__(self):
        return iter(range(self.base, self.base + len(self.names)))

    def __len__(self):
        return len(self.names)

    def keys(self):
        return list(self)

    def values(self):
        return [self[op] for op in self]

    def items(self):
        return [(op, self[op]) for op in self]

    def forget_before(self, op):
        """Drop the names of operations before ``op``."""
        cut = max(0, min(op - self.base, len(self.names)))
        del self.names[:cut]
        del self.args[:cut]
        self.base += cut

    def truncate_after(self, op):
        """Drop the names of operations after ``op`` (restore)."""
        del self.names[max(0, op - self.base + 1):]
        del self.args[max(0, op - self.base + 1):]


class Trace:
    """The kernel's event log.

    Parameters
    ----------
    mode : {"events", "count", "off"}
        ``"events"`` keeps every event (the oldest are dropped beyond
        ``limit``); ``"count"`` only counts events per function; ``"off"``
        records nothing.
    limit : int
        Events kept in ``"events"`` mode: when a new operation begins beyond
        it, the oldest half is dropped (with their operation names), so a
        1 GiB run stays small while a lecture scenario (a few hundred
        events) keeps everything.

    Indexing and slicing use absolute positions: ``len(trace)`` counts every
    event ever recorded, so a widget can remember ``mark = len(k.trace)`` and
    later read ``k.trace[mark:]``.
    """

    def __init__(self, mode="events", limit=20_000):
        self.limit = limit
        # one flat list, six slots per event (op, func, decision, reason, pfn,
        # args): one extend() per event, and no per-event object the cyclic
        # GC has to track, which matters when a long run records millions
        self._flat = []
        self._dropped = 0
        self.counts = Counter()
        self.op = 0
        self.op_names = _OpNames()
        self._names = self.op_names.names
        self._name_args = self.op_names.args
        self.mode = mode

    def begin(self, name, *args):
        """Start a new user-level operation; returns its number.

        ``name`` may be a format string filled with ``args`` when read (so
        that a hot loop does not pay for formatting)."""
        self.op += 1
        if self._mode == "events":
            self._names.append(name)
            self._name_args.append(args)
            if len(self._flat) > 6 * self.limit:
                self._drop_oldest_half()
        return self.op

    def op_name(self, op):
        """The name of user-level operation ``op``."""
        return self.op_names.get(op, "?")

    @property
    def mode(self):
        """``"events"``, ``"count"`` or ``"off"``; may be changed at any time."""
        return self._mode

    @mode.setter
    def mode(self, mode):
        if mode not in ("events", "count", "off"):
            raise ValueError(f"trace mode must be 'events', 'count' or 'off', not {mode!r}")
        self._mode = mode
        if mode == "events" and hasattr(self, "op_names"):
            # names are kept for the operations begun from now on
            self.op_names.forget_before(self.op + 1)
            self.op_names.base = self.op + 1
        # bind the recorder once, so the hot paths pay no mode test; the
        # events recorder is a closure over the list's bound extend(), which
        # spares every event a method binding and two attribute look-ups
        # (the reuse fault emits three: make bench, reuse_fault)
        if mode == "events":
            extend, trace = self._flat.extend, self

            def emit(func, decision, reason="", pfn=None, *args):
                extend((trace.op, func, decision, reason, pfn, args))
            emit.__doc__ = Trace.emit.__doc__
            self.emit = emit
            names, name_args, flat = self._names.append, self._name_args.append, self._flat

            def begin(name, *args):
                trace.op += 1
                names(name)
                name_args(args)
                if len(flat) > 6 * trace.limit:
                    trace._drop_oldest_half()
                return trace.op
            begin.__doc__ = Trace.begin.__doc__
            self.begin = begin
        else:
            self.emit = {"count": self._emit_count, "off": self._emit_off}[mode]
            self.__dict__.pop("begin", None)      # the method: counts operations only

    def emit(self, func, decision, reason="", pfn=None, *args):
        """Record that ``func`` decided ``decision`` because of ``reason``.

        ``decision`` and ``reason`` may be format strings filled with
        ``args`` only when the event is read (``{0}``, ``{1}``... index
        into ``args``)."""

    def _emit_count(self, func, decision, reason="", pfn=None, *args):
        self.counts[func] += 1

    def _emit_off(self, func, decision, reason="", pfn=None, *args):
        pass

    def _drop_oldest_half(self):
        cut = len(self._flat) // 12
        del self._flat[:6 * cut]
        self._dropped += cut
        self.op_names.forget_before(self._flat[0] if self._flat else self.op)

    def _event(self, j):
        return TraceEvent(*self._flat[6 * j:6 * j + 6])

    def __len__(self):
        return self._dropped + len(self._flat) // 6

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            start = max(start, self._dropped)
            return [self._event(j - self._dropped) for j in range(start, stop, step)]
        if i < 0:
            i += len(self)
        if i < self._dropped:
            raise IndexError("event dropped (beyond the trace limit)")
        return self._event(i - self._dropped)

    def __iter__(self):
        return (self._event(j) for j in range(len(self._flat) // 6))

    def of_op(self, op):
        """The events of user-level operation number ``op``."""
        return [self._event(j) for j, o in enumerate(self._flat[::6]) if o == op]

    def functions(self):
        """Counter of events per kernel function (any mode)."""
        if self.mode == "events":
            return Counter(self._flat[1::6])
        return Counter(self.counts)

    def truncate(self, length, op):
        """Forget events after absolute position ``length`` and operations
        after number ``op`` (used by restore)."""
        keep = max(0, length - self._dropped)
        del self._flat[6 * keep:]
        self.op_names.truncate_after(op)
        self.op = op

    def __str__(self):
        return "\n".join(str(e) for e in self)
