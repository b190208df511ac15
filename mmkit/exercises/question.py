"""Questions: a program, what to predict, a checker, hints and a folded solution.

A :class:`Question` owns a source (a :class:`~mmkit.exercises.program.Program`
or a topic scenario), the era it runs on, and its *parts*: the values to
predict (``refcount``, ``"copy"`` or ``"reuse"``, what a pipe returns...).
The answer key is computed by running the source on the model, never
written by hand.

``q.show()`` displays the question with every parameter echoed (kind,
seed, form, era), ``q.check(answer)`` says right or wrong and explains a
wrong part by its misconception without giving the value away,
``q.hint()`` gives the next of three hints, and ``q.solution()`` shows the
answer and the step-by-step state, folded, for when you want it.
"""

import csv
import datetime
import html
import io
import json

from .. import release
from ..era import era as _era
from .misconceptions import ALTERNATIVES, diagnose
from .program import show_value

__all__ = ["Part", "Question", "Attempts", "display_html", "line_no", "export_attempts", "student_id"]


def line_no(i):
    """The number printed beside op ``i`` (0-based) of a program shown with
    its ``k = Kernel(era=...)`` line, which is line 1."""
    return i + 2

_CSS = """<style>
.mm-question{border-left:4px solid #4a7ab5;padding:.4em .8em;margin:.4em 0;background:#f6f8fb}
.mm-question pre{background:#fff;border:1px solid #dde;padding:.4em;font-size:95%}
.mm-params{color:#555;font-size:90%}
.mm-check{padding:.3em .6em;margin:.3em 0;border-radius:3px}
.mm-check[data-ok=true]{background:#e6f4e6;border-left:4px solid #2e8b57}
.mm-check[data-ok=false]{background:#fbeeee;border-left:4px solid #c0392b}
.mm-check[data-ok=none]{background:#f4f4f4;border-left:4px solid #999}
.mm-hint{background:#fff8e1;border-left:4px solid #e0a800;padding:.3em .6em;margin:.3em 0}
.mm-solution summary{cursor:pointer;color:#4a7ab5}
.mm-solution table{border-collapse:collapse;font-size:90%}
.mm-solution td,.mm-solution th{border:1px solid #ccd;padding:1px 6px}
</style>"""


def _in_notebook():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def display_html(html_text, text):
    """Display ``html_text`` in a notebook, else print ``text``."""
    if _in_notebook():
        from IPython.display import HTML, display
        display(HTML(_CSS + html_text))
    else:
        print(text)


# -- parts --------------------------------------------------------------------
_BOOL = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False, "n": False, "0": False}
_SYNONYMS = {
    "nofault": "no fault", "first": "first touch", "first-touch": "first touch", "no-fault": "no fault", "none": "no fault", "no_fault": "no fault",
    "reused": "reuse", "copied": "copy", "cow": "copy",
    "migrate": "migrated", "migrated": "migrated", "moved": "migrated", "1": "migrated", "yes": "migrated", "eagain": "EAGAIN",
    "failed": "not migrated", "0": "not migrated", "no": "not migrated", "not migrated": "not migrated",
    "stays": "not migrated", "not moved": "not migrated",
    "sigbus": "SIGBUS", "sigsegv": "SIGSEGV", "efault": "EFAULT",
    "same": "same page", "same page": "same page", "new page": "copied", "copy": "copied",
    "share": "shared", "shared": "shared",
}


class Part:
    """One value to predict.

    Parameters
    ----------
    name : str
        How the answer tuple / dict names it (``"refcount"``, ``"C.refcount"``).
    type : str
        ``refcount``, ``mapcount``, ``pincount`` (ints); ``exclusive``,
        ``writable``, ``present`` (bools); ``fault`` (``"no fault"``,
        ``"reuse"``, ``"copy"``); ``copied`` (``"copied"``, ``"same page"``);
        ``shared`` (``"shared"``, ``"copied"``); ``migrated``
        (``"migrated"``, ``"EAGAIN"``); ``data`` (a digit, ``"zero"``,
        ``"SIGBUS"``...).
    fn : callable
        ``fn(run)`` -> the value on a run of the question's source.
    key : tuple
        The page this part is about, for the misconception evidence.
    prompt : str
        The question in words.
    """

    CHOICES = {"fault": ("first touch", "no fault", "reuse", "copy"), "copied": ("copied", "same page"),
               "shared": ("shared", "copied")}
    #: errno names the readers of ``migrated`` and ``pin_result`` parts accept
    ERRNOS = ("EAGAIN", "EBUSY", "EFAULT", "ENOENT", "EACCES", "ENOMEM", "EINVAL", "EPERM", "EOPNOTSUPP")

    def __init__(self, name, type, fn, key=None, prompt="", reader=None, form=None, line=None, always=False):
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"part name {name!r} must be a Python identifier, usable as q.check({name}=...)")
        self._form = form
        self.line = line
        self.always = always
        #: the line whose "before" state hint 3 shows (default: ``line``)
        self.hint_from = None
        self.name = name
        self.type = type
        self.fn = fn
        self.key = key
        self.prompt = prompt
        self.reader = reader

    def __repr__(self):
        return f"<Part {self.name} ({self.type})>"

    @property
    def form(self):
        """How to write the answer, in words."""
        if self._form:
            return self._form
        t = self.type
        if t in ("refcount", "mapcount", "pincount"):
            return "an int"
        if t == "migrated":
            return '"migrated" or the errno name, such as "EAGAIN"'
        if t == "pin_result":
            return '"ok" or the errno name, such as "EFAULT"'
        if t in ("exclusive", "writable", "present"):
            return "True or False"
        if t in self.CHOICES:
            return " or ".join(f'"{c}"' for c in self.CHOICES[t])
        return 'a digit string such as "1", "zero", or a signal / errno name such as "SIGBUS"'

    def normalize(self, v):
        """The learner's value in canonical form, or raise ValueError."""
        t = self.type
        if t in ("refcount", "mapcount", "pincount"):
            if isinstance(v, bool):
                raise ValueError(f"{self.name}: expected an int, got {v!r}")
            if isinstance(v, str) and v.strip().lstrip("-").isdigit():
                return int(v)
            if isinstance(v, str) and v.strip().lower() in ("zero", "zero page", "zero_page", "not counted",
                                                            "zero-page", "uncounted"):
                return "zero page"
            if isinstance(v, int):
                return v
            raise ValueError(f"{self.name}: expected an int, got {v!r}")
        if t in ("exclusive", "writable", "present"):
            if isinstance(v, bool):
                return v
            if isinstance(v, int) and v in (0, 1):
                return bool(v)
            if isinstance(v, str) and v.strip().lower() in _BOOL:
                return _BOOL[v.strip().lower()]
            raise ValueError(f"{self.name}: expected True or False, got {v!r}")
        if t in ("migrated", "pin_result"):
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise ValueError(f"{self.name}: expected {self.form}, got {v!r}")
            low = str(v).strip().strip("'\"").lower().lstrip("-")
            if low.upper() in self.ERRNOS:
                return low.upper()
            if t == "pin_result":
                if low in ("ok", "0", "success", "pinned", "none", "works"):
                    return "ok"
                raise ValueError(f"{self.name}: expected {self.form}, got {v!r}")
            syn = _SYNONYMS.get(low)
            if syn in ("migrated", "EAGAIN", "not migrated"):
                return syn
            raise ValueError(f"{self.name}: expected {self.form}, got {v!r}")
        if t in self.CHOICES:
            if not isinstance(v, str):
                raise ValueError(f"{self.name}: expected {self.form}, got {v!r}")
            s = v.strip()
            low = s.lower()
            for c in self.CHOICES[t]:
                if low == c.lower():
                    return c
            syn = _SYNONYMS.get(low)
            if syn in self.CHOICES[t]:
                return syn
            raise ValueError(f"{self.name}: expected {self.form}, got {v!r}")
        # data
        if isinstance(v, (bytes, bytearray)):
            return show_value(bytes(v))
        if isinstance(v, (bool, int)):
            return str(v)
        if isinstance(v, str):
            s = v.strip().strip("'\"")
            if s == "\x00" or s.lower() in ("zero", "zeros"):
                return "zero"
            if s.upper() in ("SIGBUS", "SIGSEGV", "EFAULT", "EAGAIN", "EINVAL"):
                return s.upper()
            return s
        raise ValueError(f"{self.name}: expected {self.form}, got {v!r}")


def _at(key):
    """The address a part's key names: ``a``, or ``a + 1*4096`` for a later page."""
    return key[1] + (f" + {key[2]}*4096" if len(key) > 2 and key[2] else "")


def _same(part, v, t):
    """Is the learner's (normalized) value ``v`` the truth ``t``?  For data,
    "0" also means bytes of zeros."""
    if v == t:
        return True
    if part.type == "data" and isinstance(v, str) and isinstance(t, str) and v.lower() == t.lower():
        return True
    if part.type == "migrated" and v == "not migrated":
        return t != "migrated"
    return part.type == "data" and t == "zero" and v == "0"


class _Context:
    """Evidence for the misconception diagnosis of one part."""

    def __init__(self, q, part, run):
        self.q = q
        self.part = part
        self.run = run
        self.folio = None
        self.pins = self.refs = 0
        if part.key is not None:
            try:
                self.folio = run.folio(*part.key)
            except Exception:
                self.folio = None
            if self.folio is not None:
                self.pins, self.refs = run.holders(self.folio)
        self.verbs = q.verbs
        gups = [v for v in q.gup_ops]
        self.gups = gups
        self.last_gup = gups[-1][0] if gups else None
        self.last_gup_ro = bool(gups) and gups[-1][0] == "pin" and not gups[-1][1]
        self.truncated = "truncate" in self.verbs
        self.reader_is_holder = part.reader in ("pin", "pipe", "ref") if part.reader else None

    def alt(self, key):
        return self.q._alt_value(key, self.part)

    @staticmethod
    def data_is_older(truth, learner):
        def rank(x):
            return 0 if x == "zero" else int(x) if isinstance(x, str) and x.isdigit() else None
        a, b = rank(truth), rank(learner)
        return a is not None and b is not None and a < b


# -- questions -------------------------------------------------------------------
class Question:
    """A self-checking exercise (see the module docstring).

    Parameters
    ----------
    source : Program or scenario source
        Has ``run(era, check=True)`` and ``code(era)``.
    parts : list of Part
    params : dict
        Everything needed to regenerate the question (kind, seed, form,
        era...), echoed by :meth:`show`.
    text : str
        The question in words (the parts' prompts are added).
    hints : list of str
        Hints 1 and 2; hint 3 is computed (the state before the last line).
    choices : dict, optional
        For multiple-choice (inverse) questions: letter -> Program.
    """

    # answer-bearing state: unreadable in release mode outside the kit's own public calls
    _source = release.Secret("q._source (for a multiple-choice or build question it is the answer)")
    _run = release.Secret("q._run (the model run the answer is read from)")
    _alt_runs = release.Secret("q._alt_runs (model runs the feedback is read from)")
    _hints = release.Secret("q._hints (the hints, whatever tiers the release allows)")

    def __init__(self, source, parts, params, text, hints=(), choices=None, intro="", checker=None):
        self._source = source
        self.parts = list(parts)
        self.params = dict(params)
        self.era = _era(self.params.get("era"))
        self.text = text
        self.intro = intro
        self._hints = list(hints)
        self._hint_level = 0
        self._hints_used = 0
        self.choices = choices
        self._checker = checker
        self._run = None
        self._alt_runs = {}
        self.attempts = Attempts()

    # -- the answer key --------------------------------------------------------
    @property
    @release.internal
    def source(self):
        """The question's program (or scenario).  For a multiple-choice or
        build question it is the answer, so release mode hides it there."""
        if self._checker is not None:
            release.guard("q.source of a multiple-choice or build question (it is the answer)")
        return self._source

    @property
    def run(self):
        """The question's program run on the model (the state the answer is
        read from); hidden in release mode."""
        release.guard("q.run (the model run the answer is read from)")
        return self._model_run()

    @release.private("q._model_run() (the model run the answer is read from)")
    def _model_run(self):
        if self._run is None:
            self._run = self._source.run(self.era)
        return self._run

    def answer_key(self):
        """The right answer (a tuple in part order, or a single value; the
        letter of a multiple-choice question; the program of a build
        question).  For lecturers and tests; learners use :meth:`solution`.
        Not available in release mode (:mod:`mmkit.release`)."""
        release.guard("answer_key()")
        with release._internal():
            return self._answer_key()

    @release.private("q._answer_key()")
    def _answer_key(self):
        if self._checker is not None:
            return self._checker.key()
        vals = tuple(p.fn(self._model_run()) for p in self.parts)
        return vals[0] if len(vals) == 1 else vals

    @release.private("q._alt_value() (the answer under another kernel era)")
    def _alt_value(self, key, part):
        if key not in self._alt_runs:
            alt_era = ALTERNATIVES[key](self.era)
            run = None
            if alt_era is not None:
                try:
                    run = self._source.run(alt_era, check=False)
                    if getattr(run, "error", None) is not None:
                        run = None
                except Exception:
                    run = None
            self._alt_runs[key] = run
        run = self._alt_runs[key]
        if run is None:
            return None
        try:
            return part.fn(run)
        except Exception:
            return None

    @property
    @release.internal
    def verbs(self):
        return [op.verb for op in getattr(self._source, "ops", ())]

    @property
    @release.internal
    def gup_ops(self):
        return [(op.verb, op.a4 if op.verb == "pin" else False) for op in getattr(self._source, "ops", ())
                if op.verb in ("pin", "gup", "vmsplice")]

    # -- text ----------------------------------------------------------------------
    def params_line(self):
        return " ".join(f"{k}={v}" for k, v in self.params.items() if v is not None)

    def answer_form(self):
        if self._checker is not None:
            return self._checker.form
        if len(self.parts) == 1:
            return f"q.check({self.parts[0].name}) with {self.parts[0].form}"
        names = ", ".join(p.name for p in self.parts)
        return f"q.check(({names})) -- a tuple in this order, or keywords q.check({self.parts[0].name}=..., ...)"

    @release.internal
    def code_lines(self):
        """The code shown with the question, one string per line (line 1 is
        the first); the "line N" of every prompt counts these lines."""
        return self._source.code(self.params.get("era")).splitlines()

    @release.internal
    def numbered_code(self):
        ls = self.code_lines()
        if not getattr(self._source, "ops", None):
            return "\n".join(ls)
        w = len(str(len(ls)))
        return "\n".join(f"{i:>{w}}  {ln}" for i, ln in enumerate(ls, 1))

    def __str__(self):
        lines = [f"[{self.params_line()}]"]
        if self.intro:
            lines.append(self.intro)
        if self.choices is None and self._checker is None:
            lines += ["", self.numbered_code(), ""]
        lines.append(self.text)
        for p in self.parts:
            if p.prompt:
                lines.append(f"  {p.name}: {p.prompt} ({p.form})")
        if self.choices:
            for letter, prog in self.choices.items():
                lines += ["", f"({letter})", prog.code()]
        lines += ["", "Answer with " + self.answer_form()]
        return "\n".join(lines)

    def _html(self):
        e = html.escape
        out = [f'<div class="mm-question"><div class="mm-params">{e(self.params_line())}</div>']
        if self.intro:
            out.append(f"<p>{e(self.intro)}</p>")
        if self.choices is None and self._checker is None:
            out.append(f"<pre>{e(self.numbered_code())}</pre>")
        out.append(f"<p><b>{e(self.text)}</b></p>")
        if any(p.prompt for p in self.parts):
            out.append("<ul>" + "".join(f"<li><code>{e(p.name)}</code>: {e(p.prompt)} <i>({e(p.form)})</i></li>"
                                        for p in self.parts if p.prompt) + "</ul>")
        if self.choices:
            out.append('<div style="display:flex;flex-wrap:wrap;gap:.5em">')
            for letter, prog in self.choices.items():
                out.append(f"<div><b>({letter})</b><pre>{e(prog.code())}</pre></div>")
            out.append("</div>")
        out.append(f"<p>Answer with <code>{e(self.answer_form())}</code></p></div>")
        return "".join(out)

    def _repr_html_(self):
        return _CSS + self._html()

    def show(self):
        """Display the question (HTML in a notebook, text elsewhere)."""
        display_html(self._html(), str(self))

    # -- checking -------------------------------------------------------------------
    def _collect(self, answer, kw):
        if kw:
            missing = [p.name for p in self.parts if p.name not in kw]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            unknown = set(kw) - {p.name for p in self.parts}
            if unknown:
                raise ValueError(f"unknown name(s) {', '.join(sorted(unknown))}; expected "
                                 f"{', '.join(p.name for p in self.parts)}")
            return [kw[p.name] for p in self.parts]
        if isinstance(answer, dict):
            return self._collect(None, answer)
        if len(self.parts) == 1:
            if isinstance(answer, (tuple, list)) and len(answer) == 1:
                return [answer[0]]
            return [answer]
        if not isinstance(answer, (tuple, list)) or len(answer) != len(self.parts):
            raise ValueError(f"expected {len(self.parts)} values ({', '.join(p.name for p in self.parts)}), "
                             f"got {answer!r}")
        return list(answer)

    @release.internal
    def evaluate(self, answer=..., **kw):
        """Check without displaying: returns ``(ok, messages)``.

        ``ok`` is True, False, or None when no answer was given yet (the
        ``...`` placeholder) or it could not be read.  ``messages`` are the
        lines :meth:`check` would display.
        """
        ok, msgs = self._evaluate(answer, **kw)
        if ok is not None and release.verdict_only():
            return ok, [_VERDICT[ok]]
        return ok, msgs

    @release.private("q._evaluate() (per-part feedback)")
    def _evaluate(self, answer=..., **kw):
        if self._checker is not None:
            return self._checker.evaluate(self, answer)
        if answer is ... and not kw:
            return None, ["No answer yet: replace ... with your prediction."]
        try:
            raw = self._collect(answer, kw)
            vals = [p.normalize(v) for p, v in zip(self.parts, raw)]
        except ValueError as err:
            return None, [f"Could not read the answer: {err}.  Answer with {self.answer_form()}."]
        truth = [p.fn(self._model_run()) for p in self.parts]
        wrong = [(p, v, t) for p, v, t in zip(self.parts, vals, truth) if not _same(p, v, t)]
        if not wrong:
            return True, ["Correct." + (f" ({len(self.parts)} of {len(self.parts)} parts)" if len(self.parts) > 1 else "")]
        msgs = []
        if len(self.parts) > 1:
            right = [p.name for p, v, t in zip(self.parts, vals, truth) if _same(p, v, t)]
            msgs.append(f"Not yet: {', '.join(p.name for p, _, _ in wrong)} "
                        f"{'is' if len(wrong) == 1 else 'are'} wrong"
                        + (f" ({', '.join(right)} right)." if right else "."))
        else:
            msgs.append("Not yet.")
        seen = set()
        given = {p.name: v for p, v in zip(self.parts, vals)}
        for p, v, t in wrong:
            ctx = _Context(self, p, self._model_run())
            ctx.answer = given          # the whole answer: a misconception must fit all of it
            m = diagnose(p, v, t, ctx)
            if m is None:
                msgs.append(f"{p.name}: {guidance(p, ctx)}")
            elif m.key not in seen:
                seen.add(m.key)
                msgs.append(f"{p.name}: {m.title}. {m.explain}")
            else:
                msgs.append(f"{p.name}: {m.title} (see above).")
        msgs.append("q.hint() gives a hint.")
        return False, msgs

    @release.internal
    def check(self, answer=..., **kw):
        """Check ``answer``; display the verdict and return True / False
        (None when there is no answer yet).

        Examples
        --------
        ``q.check((2, 2, 0, False))``, ``q.check(refcount=2, mapcount=2,
        pincount=0, exclusive=False)``, ``q.check("copy")``, ``q.check("B")``.
        """
        ok, msgs = self.evaluate(answer, **kw)
        if ok is not None:
            self._record(answer, kw, ok)
        mark = {True: "✔", False: "✘", None: "…"}[ok]
        text = f"{mark} " + "\n  ".join(msgs)
        body = "".join(f"<div>{html.escape(m)}</div>" for m in msgs)
        state = {True: "true", False: "false", None: "none"}[ok]
        display_html(f'<div class="mm-check" data-ok="{state}"><b>{mark}</b> {body}</div>', text)
        return ok

    def _record(self, answer, kw, ok):
        verdicts = {}
        if self._checker is None and not release.verdict_only():
            try:
                raw = self._collect(answer, kw)
                truth = [p.fn(self._model_run()) for p in self.parts]
                for p, v, t in zip(self.parts, raw, truth):
                    verdicts[p.name] = _same(p, p.normalize(v), t)
            except ValueError:
                pass
        given = kw if kw else answer
        if callable(given):
            given = getattr(given, "__name__", "build")
        self.attempts.append(dict(
            student=student_id(),
            kind=self.params.get("kind", self.params.get("scenario")), seed=self.params.get("seed"),
            form=self.params.get("form", "predict"), era=str(self.params.get("era")),
            difficulty=self.params.get("difficulty"), answers=_jsonable(given), ok=ok, verdicts=verdicts,
            hints_used=self._hints_used,
            time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")))

    # -- hints and solution ----------------------------------------------------------
    @release.internal
    def hints(self):
        """All three hints as strings (hint 3 is computed from the model,
        unless the question was given its own three).  In release mode, only
        the tiers the lecturer allows (a disabled tier is left out)."""
        hs = self._all_hints()
        st = release.status()
        if st.enabled:
            return [h for i, h in enumerate(hs, 1) if i in st.hints]
        return hs

    @release.private("q._all_hints() (every hint tier)")
    def _all_hints(self):
        if len(self._hints) >= 3:
            return list(self._hints[:3])
        return self._hints[:2] + [self._state_hint()]

    @release.private("q._state_hint() (hint 3)")
    def _state_hint(self):
        if self._checker is not None:
            return self._checker.hint3(self)
        key = next((p.key for p in self.parts if p.key is not None), None)
        if not getattr(self._source, "ops", None):
            return ("Take the steps one at a time and write down, after each, who holds the page: page-table "
                    "entries, pins, references, pipe buffers, the page cache.")
        if key is None or len(self._source.ops) < 2:
            return "Work through the lines one at a time and write down who holds the page after each."
        # the state just before the first line a part asks about (the last line if none names one)
        lines = [p.hint_from if p.hint_from is not None else p.line for p in self.parts
                 if p.line is not None or p.hint_from is not None]
        n = min(lines) if lines else len(self._source.ops) - 1
        n = max(n, 1)
        before = self._source.run(self.era, upto=n, trace="off")
        info = before.page(*key)
        who = f"{key[0]}'s page at {_at(key)}"
        where = f"line {line_no(n)} (`{self._source.ops[n].code()}`)"
        if not info.present:
            return f"Before {where}, {who} is not mapped. What does that line do?"
        if info.zero_page:
            return f"Before {where}, {who} is the shared zero page (not counted). What does that line do?"
        from .. import notation
        return (f"Before {where}, {who} is {notation.counters(info.refcount, info.mapcount, info.pincount, info.exclusive)}"
                f", {notation.pte_bits(info.writable)} ({_KEY}). What does that line change?")

    @release.internal
    def hint(self, level=None):
        """Display the next hint (or hint ``level``, 1 to 3).  After the
        third, says there are no more."""
        hs = self._all_hints()
        st = release.status()
        allowed = [i for i in range(1, len(hs) + 1) if i in st.hints]
        if level is None:
            nxt = [i for i in allowed if i > self._hint_level]
            if not allowed:
                release.guard("Every hint")
            if not nxt:
                if st.enabled:
                    off = [str(i) for i in range(1, len(hs) + 1) if i not in allowed]
                    msg = (f"There are no more hints: that was the last hint this release allows"
                           + (f" (hint {', '.join(off)} is turned off by {st.contact})" if off else "")
                           + f". q.hint({allowed[0]}) shows hint {allowed[0]} again.")
                else:
                    msg = (f"There are no more hints: that was hint {len(hs)} of {len(hs)}. q.hint(1) shows hint 1 "
                           "again; q.solution() shows the answer, folded.")
                display_html(f'<div class="mm-hint">{html.escape(msg)}</div>', msg)
                return
            self._hint_level = nxt[0]
            level = self._hint_level
        level = max(1, min(int(level), len(hs)))
        if level not in allowed:
            release.guard(f"Hint {level}")
        self._hints_used = max(self._hints_used, level)
        h = hs[level - 1]
        display_html(f'<div class="mm-hint"><b>Hint {level}/{len(hs)}:</b> {html.escape(h)}</div>',
                     f"Hint {level}/{len(hs)}: {h}")

    def explanation(self):
        """The worked solution as text: the answer and the state after each line
        (not in release mode)."""
        release.guard("explanation()")
        with release._internal():
            return self._explanation()

    @release.private("q._explanation() (the solution)")
    def _explanation(self):
        if self._checker is not None:
            return self._checker.solution_text(self)
        key = self._answer_key()
        lines = [f"Answer: {key!r}"]
        lines += self._walkthrough_text()
        return "\n".join(lines)

    @release.private("q._walkthrough_rows() (the solution's states)")
    def _walkthrough_rows(self):
        pkey = next((p.key for p in self.parts if p.key is not None), None)
        if pkey is None or not hasattr(self._source, "ops"):
            return pkey, []
        rows = []
        for i in range(1, len(self._source.ops) + 1):
            r = self._source.run(self.era, upto=i)
            info = r.page(*pkey)
            line = r.lines[-1]
            val = show_value(line.value) if line.value is not None else ""
            if line.op.verb in ("read", "fread") and val != "":
                # the bytes read, not a page: "zero" would read like "the zero page"
                val = "read bytes 00" if val == "zero" else f"read bytes {val!r}"
            rows.append((line.op.code(), val, info))
        return pkey, rows

    @release.private("q._walkthrough_text() (the solution)")
    def _walkthrough_text(self):
        pkey, rows = self._walkthrough_rows()
        if not rows:
            return []
        out = [f"State of {pkey[0]}'s page at {_at(pkey)} after each line ({_KEY}):"]
        for n, (code, val, i) in enumerate(rows, 2):
            out.append(f"  {n:>2}  {code:44} {('-> ' + str(val)) if val != '' else '':18} {_state_str(i)}")
        trace = self._last_trace()
        if trace:
            out.append("Kernel trace of the last line:")
            out += [f"  {t}" for t in trace]
        return out

    @release.private("q._last_trace() (the solution's kernel trace)")
    def _last_trace(self):
        run = self._model_run()
        k = getattr(run, "kernel", None)
        if k is None:
            return []
        return [str(e) for e in k.trace.of_op(k.trace.op)]

    def solution(self):
        """Display the answer with a step-by-step explanation, folded:
        open it only after you have tried.  Not available in release mode."""
        release.guard("solution()")
        with release._internal():
            self._solution()

    @release.private("q._solution() (the solution)")
    def _solution(self):
        e = html.escape
        key = self._answer_key()
        if self._checker is not None:
            body = e(self._checker.solution_text(self))
            display_html(f'<details class="mm-solution"><summary>Solution ({e(self.params_line())}): '
                         f'open only after you have tried</summary><pre>{body}</pre></details>',
                         "Solution:\n" + self._checker.solution_text(self))
            return
        pkey, rows = self._walkthrough_rows()
        table = ""
        if rows:
            head = "<tr><th>#</th><th>line</th><th>value</th><th>page afterwards</th></tr>"
            body = "".join(
                f"<tr><td>{n}</td><td><code>{e(c)}</code></td><td>{e(str(v))}</td><td>{e(_state_str(i))}</td></tr>"
                for n, (c, v, i) in enumerate(rows, 2))
            table = (f"<p>{e(pkey[0])}'s page at <code>{e(_at(pkey))}</code> after each line "
                     f"(line 1 is <code>k = Kernel(...)</code>):</p><table>{head}{body}</table>"
                     f"<p style='font-size:85%'>{e(_KEY)}</p>")
        trace = "".join(f"<div><code>{e(t)}</code></div>" for t in self._last_trace())
        display_html(f'<details class="mm-solution"><summary>Solution ({e(self.params_line())}): '
                     f'open only after you have tried</summary><p>Answer: <code>{e(repr(key))}</code></p>'
                     f'{table}<p>Kernel trace of the last line:</p>{trace}</details>',
                     "Solution:\n" + self._explanation())


_VERDICT = {True: "Correct.",
            False: "Not right. (This course's release says only right or wrong for the whole answer.)"}

GENERIC = {
    "refcount": "Count every holder of the page at the end: one per page-table entry that maps it, one for "
                "the page cache, one per FOLL_GET reference or pipe buffer, 1024 per FOLL_PIN. Holders that "
                "were released (unpin, put, pipe read, exit, munmap) no longer count.",
    "mapcount": "Count the page-table entries that map this very page, in all processes, at the end. A process "
                "that copied the page on a write maps its copy, not this page.",
    "pincount": "Count the FOLL_PIN pins (pin_user_pages()) still held on this page.",
    "exclusive": "PageAnonExclusive: set on a page created for one process or reused by a fault after it "
                 "found the refcount at 1; cleared when fork() shares the page.",
    "writable": "Ask what the last fault on this page was, and whether fork() write-protected it since.",
    "present": "Is there a page-table entry at all? Think of MADV_DONTFORK, MADV_WIPEONFORK, munmap and exit.",
    "fault": "Look at the PTE just before the write. None at all: a first touch (do_anonymous_page(); note "
             "that fork() copies no page table for a VMA that has no anonymous page yet). Writable: no fault. "
             "Read-only: do_wp_page() reuses the page if it is PageAnonExclusive or if nobody else holds it "
             "(refcount 1), and copies it otherwise (always for the zero page).",
    "copied": "Does this GUP request unshare? Only a FOLL_PIN without FOLL_WRITE on a page that is not "
              "PageAnonExclusive does, and it copies only if someone else still holds the page.",
    "shared": "fork() shares a page, unless it may be pinned in an mm that has pinned: then the child gets a "
              "copy at once.",
    "migrated": "Migration needs to unmap the page and then find no holder besides the page tables, the page "
                "cache and its own isolation reference.",
    "pin_result": "Which pins can GUP refuse? Think of FOLL_LONGTERM with FOLL_WRITE on a shared mapping of a "
                  "file that needs dirty tracking (mm/gup.c: check_vma_flags()).",
    "data": "Follow the page, not the address: which physical page does the reader hold at that moment, and "
            "which writes went into that very page?",
}


#: functions (part, ctx) -> guidance text or None, asked before :data:`GENERIC` (the large-folio
#: kind adds one: the small-page counting rules are false for a page of a large folio)
GUIDANCE = []


def guidance(part, ctx):
    """The counting guidance for a wrong ``part`` that no misconception explains."""
    for g in GUIDANCE:
        try:
            t = g(part, ctx)
        except Exception:
            t = None
        if t:
            return t
    return GENERIC.get(part.type, "Check this part again.")


def _jsonable(v):
    if v is ... or v is None or isinstance(v, (bool, int, float, str)):
        return None if v is ... else v
    if isinstance(v, (bytes, bytearray)):
        return show_value(bytes(v))
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return repr(v)


class Attempts(list):
    """The checked attempts of a question, oldest first: one dict each with
    ``student`` (see :func:`student_id`; None when unknown), ``kind``, ``seed``, ``form``, ``era``, ``difficulty``, ``answers``,
    ``ok``, ``verdicts`` (part name -> right?), ``hints_used`` and ``time``
    (UTC).  Export with :meth:`to_json` / :meth:`to_csv`, or several
    questions' at once with :func:`export_attempts`."""

    FIELDS = ("time", "student", "kind", "seed", "form", "era", "difficulty", "answers", "ok", "verdicts", "hints_used")

    def to_json(self, path=None):
        text = json.dumps(list(self), indent=1)
        if path is not None:
            with open(path, "w") as f:
                f.write(text)
        return text

    def to_csv(self, path=None):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.FIELDS)
        w.writeheader()
        for a in self:
            w.writerow({k: (json.dumps(a.get(k)) if isinstance(a.get(k), (dict, list)) else a.get(k))
                        for k in self.FIELDS})
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", newline="") as f:
                f.write(text)
        return text


def student_id():
    """Who is answering: ``$MMKIT_STUDENT``, else the hub's
    ``$JUPYTERHUB_USER``, else None."""
    import os
    return os.environ.get("MMKIT_STUDENT") or os.environ.get("JUPYTERHUB_USER") or None


def export_attempts(*questions, path=None, format="csv", student=None):
    """All attempts of ``questions`` (a record for a self-learner or a
    lecturer), as CSV or JSON text; written to ``path`` when given.
    ``student`` fills in the student of attempts recorded without one."""
    if format not in ("csv", "json"):
        raise ValueError(f"format must be 'csv' or 'json', not {format!r}")
    allq = Attempts(dict(a, student=a.get("student") or student) for q in questions for a in q.attempts)
    return allq.to_csv(path) if format == "csv" else allq.to_json(path)


_KEY = None


def _state_str(i):
    """A page's state in the kit's notation: ``pfn 3: r2 m2 p0 AE, W``."""
    from .. import notation
    if not i.present:
        return "not mapped"
    if i.zero_page:
        return "zero page (not counted), " + notation.pte_bits(i.writable)
    return (f"pfn {i.pfn}: " + notation.counters(i.refcount, i.mapcount, i.pincount, i.exclusive)
            + ", " + notation.pte_bits(i.writable))


def _key():
    from .. import notation
    return notation.key_for(["r", "m", "p", "AE", "W", "RO", "zero page"])


_KEY = _key()
