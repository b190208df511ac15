"""Student release mode: answers hidden, verdicts kept.

A lecturer turns release mode on for a class; then ``answer_key()``,
``solution()``, ``explanation()``, the hint tiers the lecturer disabled,
the answer-revealing attributes of a question (``q.run``, ``q.source`` of a
multiple-choice or build question, ``q._checker.letter`` / ``.program``)
and ``python -m mmkit.exercises -c`` raise :class:`ReleaseModeError`, which
says that release mode is on and who can turn it off.  ``check()`` and
``evaluate()`` still give verdicts and misconception feedback, and the lab
tasks still judge answers.

Where the setting comes from (the first that says anything wins):

1. the environment variable ``MMKIT_RELEASE`` (``1``/``true``/``on`` or
   ``0``/``false``/``off``; the workshop hub sets ``MMKIT_RELEASE=1``), with
   ``MMKIT_RELEASE_HINTS`` (``"1,2"``: the hint tiers students may see;
   ``""`` or ``none``: no hints) and ``MMKIT_RELEASE_CONTACT`` (who can turn
   it off);
2. a file ``mmkit-release.toml`` in the notebook's working directory, else
   in ``$JUPYTER_CONFIG_DIR``, else ``/etc/mmkit/mmkit-release.toml``
   (``$MMKIT_RELEASE_CONFIG`` names the file explicitly)::

       [release]
       enabled = true
       hints = [1, 2]          # hint 3 (the computed state) disabled
       contact = "Dr Example (office 1.23)"
       feedback = "verdict"    # check() says only right or wrong (default "full")

The environment's ``MMKIT_RELEASE_HINTS`` / ``_CONTACT`` / ``_FEEDBACK``
override the file's.

Feedback (``MMKIT_RELEASE_FEEDBACK`` or ``feedback =``): ``"full"`` (the
default) keeps per-part verdicts and misconception feedback -- for
formative work; ``"verdict"`` makes ``check()`` / ``evaluate()`` (and the
lab tasks) say only right or wrong for the whole answer: no per-part
verdict, no misconception text (which can name the right value), no
per-part record in ``q.attempts``, and :func:`mmkit.grading.score` refuses
outside nbgrader's autograder -- for graded work.

Private twins: the question objects' underscore methods and attributes
that hold or compute an answer (``q._answer_key()``, ``q._model_run()``,
``q._walkthrough_text()``, ``q._all_hints()``, ``q._run``, ``q._hints``,
the checkers' ``_letter`` / ``_states`` / ``_program`` ...) raise the same
:class:`ReleaseModeError`; the kit's own public calls (``check()``,
``hint()``) reach them inside :func:`_internal`.

What release mode is and is not: it takes the answer off every documented
path and every obvious attribute, so that it is not one call away.  It is
not a sandbox: a student controls their own Python process (they can unset
the variable) and the kit is a simulator, so running the question's program
on the model computes what the checker computes -- which is doing the
exercise with the tool.  Marks come from :mod:`mmkit.grading`'s hidden
tests, run on the lecturer's machine.
"""

import contextlib
import contextvars
import functools
import os
from dataclasses import dataclass

from .errors import MMError

__all__ = ["ReleaseModeError", "Release", "status", "enabled", "guard", "hint_allowed", "verdict_only",
           "private", "Secret", "CONFIG_NAME", "DEFAULT_CONTACT", "FEEDBACK"]

CONFIG_NAME = "mmkit-release.toml"
DEFAULT_CONTACT = "your lecturer"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
#: the feedback settings: per-part feedback, or one verdict for the whole answer
FEEDBACK = ("full", "verdict")


class ReleaseModeError(MMError):
    """Raised for an answer-revealing call while release mode is on."""


@dataclass(frozen=True)
class Release:
    """The release setting in force: ``enabled``, the hint tiers allowed
    (``hints``), who can turn it off (``contact``) and where it came from
    (``source``: ``"MMKIT_RELEASE"``, a file path, or ``"default"``)."""

    enabled: bool = False
    hints: tuple = (1, 2, 3)
    contact: str = DEFAULT_CONTACT
    source: str = "default"
    feedback: str = "full"

    def how_to_turn_off(self):
        if self.source == "MMKIT_RELEASE":
            where = "the environment variable MMKIT_RELEASE=1, which the hub or the lecturer sets"
        else:
            where = f"the file {self.source} ([release] enabled = true)"
        return (f"Release mode is on: answers and solutions are hidden in this course's student release; "
                f"it is set by {where}. Only {self.contact} can turn it off. check() still says right "
                f"or wrong" + (" for the whole answer." if self.feedback == "verdict"
                                             else " and explains a wrong answer."))


def _parse_hints(v, where):
    if isinstance(v, str):
        v = v.strip().lower()
        if v in ("", "none", "off", "0"):
            return ()
        if v in ("all",):
            return (1, 2, 3)
        try:
            v = [int(x) for x in v.replace(" ", "").split(",") if x]
        except ValueError:
            raise ReleaseModeError(f"{where}: hints must be tier numbers such as 1,2 -- got {v!r}") from None
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ReleaseModeError(f"{where}: hints must be a list of tier numbers such as [1, 2], not {v!r}")
    bad = [x for x in v if x not in (1, 2, 3)]
    if bad:
        raise ReleaseModeError(f"{where}: hint tiers are 1, 2 and 3, not {bad}")
    return tuple(sorted(set(v)))


def default_config_paths():
    """Where ``mmkit-release.toml`` is looked for, in order."""
    if os.environ.get("MMKIT_RELEASE_CONFIG"):
        return [os.environ["MMKIT_RELEASE_CONFIG"]]
    paths = [os.path.join(os.getcwd(), CONFIG_NAME)]
    if os.environ.get("JUPYTER_CONFIG_DIR"):
        paths.append(os.path.join(os.environ["JUPYTER_CONFIG_DIR"], CONFIG_NAME))
    paths.append(os.path.join("/etc/mmkit", CONFIG_NAME))
    return paths


_cache = {}


def _read_toml(path):
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _cache:
        try:
            import tomllib
        except ImportError:                       # Python 3.10
            import tomli as tomllib
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ReleaseModeError(f"{path} is not valid TOML: {e}") from None
        _cache.clear()
        _cache[key] = data
    return _cache[key]


def status(config_paths=None):
    """The :class:`Release` setting in force now (read afresh each call:
    the environment, then the first ``mmkit-release.toml`` found)."""
    env = os.environ.get("MMKIT_RELEASE")
    fileconf, source = {}, "default"
    for p in (default_config_paths() if config_paths is None else config_paths):
        if os.path.isfile(p):
            data = _read_toml(p)
            fileconf = data.get("release", {})
            if not isinstance(fileconf, dict):
                raise ReleaseModeError(f"{p}: [release] must be a table")
            source = p
            break
    if env is not None and env.strip().lower() in _TRUE | _FALSE:
        enabled, source = env.strip().lower() in _TRUE, "MMKIT_RELEASE"
    elif env is not None:
        raise ReleaseModeError(f"MMKIT_RELEASE must be 1 or 0 (true/false, on/off), not {env!r}")
    else:
        enabled = fileconf.get("enabled", bool(fileconf))
        if not isinstance(enabled, bool):
            raise ReleaseModeError(f"{source}: enabled must be true or false, not {enabled!r}")
    hints = _parse_hints(fileconf.get("hints", [1, 2, 3]), source)
    if os.environ.get("MMKIT_RELEASE_HINTS") is not None:
        hints = _parse_hints(os.environ["MMKIT_RELEASE_HINTS"], "MMKIT_RELEASE_HINTS")
    contact = os.environ.get("MMKIT_RELEASE_CONTACT") or fileconf.get("contact") or DEFAULT_CONTACT
    feedback = os.environ.get("MMKIT_RELEASE_FEEDBACK") or fileconf.get("feedback") or "full"
    if not isinstance(feedback, str) or feedback.strip().lower() not in FEEDBACK:
        raise ReleaseModeError(f"feedback must be one of {', '.join(FEEDBACK)}, not {feedback!r} "
                               f"(MMKIT_RELEASE_FEEDBACK or {source})")
    return Release(enabled=enabled, hints=hints if enabled else (1, 2, 3), contact=str(contact), source=source,
                   feedback=feedback.strip().lower() if enabled else "full")


def enabled():
    """Is release mode on?"""
    return status().enabled


def guard(what):
    """Raise :class:`ReleaseModeError` naming ``what`` if release mode is on."""
    st = status()
    if st.enabled:
        raise ReleaseModeError(f"{what} is not available to students. " + st.how_to_turn_off())


def hint_allowed(level):
    """May hint tier ``level`` (1-3) be shown now?"""
    return level in status().hints


def verdict_only():
    """Does check() say only right or wrong now (release mode on with
    ``feedback = "verdict"``)?"""
    st = status()
    return st.enabled and st.feedback == "verdict"


# -- private twins ------------------------------------------------------------------------
_TRUSTED = contextvars.ContextVar("mmkit_release_trusted", default=False)


@contextlib.contextmanager
def _internal():
    """The kit's own public calls (check(), hint(), generate()...) run their
    answer-bearing private helpers inside this."""
    tok = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(tok)


def _guard_private(what):
    if not _TRUSTED.get():
        guard(what)


def private(what):
    """Decorator: the method computes an answer; in release mode only the
    kit's own public calls may run it (see :func:`_internal`)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            _guard_private(what)
            return fn(*a, **kw)
        return wrapper
    return deco


def internal(fn):
    """Decorator: a public entry point whose private helpers may run."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        with _internal():
            return fn(*a, **kw)
    return wrapper


class Secret:
    """A class attribute that holds an answer-bearing value per instance
    (``self._letter = x`` stores it); reading it in release mode raises
    :class:`ReleaseModeError` unless the kit's own public calls read it."""

    def __init__(self, what):
        self.what = what

    def __set_name__(self, owner, name):
        self.slot = "_mmkit_sealed_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        _guard_private(self.what)
        try:
            return obj.__dict__[self.slot]
        except KeyError:
            raise AttributeError(self.slot) from None

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value
