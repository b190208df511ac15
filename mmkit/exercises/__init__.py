"""Self-checking exercises: predict, check, get a hint, and never run out.

Every exercise is a short program run on the model, so its answer is
computed, not typed in.  A seed makes it reproducible: a lecturer can hand
each student their own seed, and a self-learner can take seed after seed
(like the OSTEP homework simulators' ``-s SEED`` and ``-c``).

>>> from mmkit.exercises import generate
>>> q = generate("cow", seed=7)
>>> q.params["kind"], q.params["seed"], q.params["form"]
('cow', 7, 'predict')
>>> q.evaluate(q.answer_key())[0]
True

In a notebook: ``q.show()`` (or ``q`` as the last expression) displays the
question with all its parameters; ``q.check(answer)`` says right or wrong,
explaining a wrong part by the misconception behind it without printing
the right value; ``q.hint()`` gives hints 1, 2, 3 in turn (a fourth call says there are
no more); ``q.solution()`` shows the answer and the state after every
line, folded; ``q.attempts.to_csv()`` / ``.to_json()`` (or
``export_attempts(q1, q2, ..., path="record.csv")``) keep a record of
every checked answer: kind, seed, form, era, answers, verdicts, hints
used and time, and the student (``MMKIT_STUDENT`` or the hub's
``JUPYTERHUB_USER``).

In a class's student release (``MMKIT_RELEASE=1`` or an
``mmkit-release.toml``, see :mod:`mmkit.release`) ``answer_key()``,
``solution()``, the hint tiers the lecturer turned off and ``-c`` below
raise :class:`~mmkit.release.ReleaseModeError`; ``check()`` still judges.
:mod:`mmkit.grading` exports a set of seeded exercises as an nbgrader
assignment with one seed per student.

Kinds (one per notebook): see :data:`KINDS`.  Forms: ``"predict"`` (predict
values), ``"inverse"`` (pick the program that produced a state),
``"build"`` (write a program that produces a state).  From a shell::

    python -m mmkit.exercises -k cow -s 7        # the question
    python -m mmkit.exercises -k cow -s 7 -c     # ... and its answer
    python -m mmkit.exercises -k pin -s 1 -n 30 -c > answers.txt   # a class set
    python -m mmkit.exercises -k cow -s 7 -d 3   # harder: more lines, other eras
"""

import os

from ..errors import InvalidArgument
from .kinds import DIFFICULTIES, KINDS, make_question
from .predict import predict
from .question import Attempts, Part, Question, export_attempts
from . import folio as _folio  # noqa: E402,F401  registers the "folio" kind (large folios)

__all__ = ["generate", "predict", "KINDS", "catalogue", "Question", "Part", "FORMS", "DIFFICULTIES",
           "Attempts", "export_attempts"]

FORMS = ("predict", "inverse", "build")


def catalogue():
    """{kind: (notebook, title, forms)} for every exercise kind.  (Not called
    ``kinds``: that name is the submodule :mod:`mmkit.exercises.kinds`.)"""
    return {k.name: (k.notebook, k.title, k.forms) for k in KINDS.values()}


def generate(kind, seed=None, form="predict", era=None, difficulty=2, upto=None):
    """A new exercise of ``kind``.

    Parameters
    ----------
    kind : str
        One of ``catalogue()``: ``counters``, ``fork``, ``cow``, ``pin``,
        ``unshare``, ``migrate``, ``truncate`` (notebooks 00-06) and
        ``folio`` (notebook 09: large folios -- a 2 MiB THP or a 64 KiB
        mTHP, PMD or PTE mapping, the folio's counters, COW of a page of a
        large folio).
    seed : int, optional
        The same seed gives the same exercise (default: a random seed, shown
        with the question so it can be reproduced).
    form : {"predict", "inverse", "build"}
    era : str, optional
        The kernel the program runs on: ``"6.18"`` by default, or drawn
        from 5.7 to 6.18 at difficulty 3; try ``"5.7"``.
    difficulty : {1, 2, 3}
        1: one or two operations, at most two parts; 2 (default): two to
        four operations, up to three parts; 3: three to six operations, a
        grandchild process, up to four parts, and a drawn era unless
        ``era`` is given.
    upto : str, optional
        A notebook number (``"00"`` ... ``"06"``, ``"09"``): draw only a
        question whose programs use operations the notebooks up to that
        one have taught (:mod:`mmkit.exercises.taught`; in ``"00"``
        also only the 6.18 kernel).  The seed's own draw if it fits, else
        the first fitting draw of a stream derived from the seed: the same
        ``(kind, seed, upto)`` always gives the same question.

    Every form of a seed is drawn from its own random stream, so the
    predict, inverse and build questions of one seed do not give each
    other away.  Seeds 1-30 give 30 different programs of each kind (for
    ``folio``, every seed of a block of 100 draws a program of its own).

    Returns
    -------
    Question

    Raises
    ------
    InvalidArgument
        For an unknown kind, form or era, or a form the kind does not offer.
    """
    if kind not in KINDS:
        raise InvalidArgument(f"unknown exercise kind {kind!r}; kinds are {', '.join(KINDS)}")
    if form not in FORMS:
        raise InvalidArgument(f"unknown form {form!r}; forms are {', '.join(FORMS)}")
    if form not in KINDS[kind].forms:
        raise InvalidArgument(f"kind {kind!r} offers the forms {', '.join(KINDS[kind].forms)}")
    from ..era import era as _era
    if era is not None:
        _era(era)
    if difficulty not in DIFFICULTIES:
        raise InvalidArgument(f"difficulty must be one of {', '.join(map(str, DIFFICULTIES))}, not {difficulty!r}")
    if seed is None:
        seed = int.from_bytes(os.urandom(3), "little")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgument(f"seed must be a non-negative int, not {seed!r}")
    if upto is None:
        return make_question(kind, seed, form, None if era is None else str(era), difficulty)
    from . import taught
    allowed = taught.taught(upto)
    upto = str(upto)[:2]
    if era is None and "era" not in allowed:
        era = "6.18"
    import hashlib
    for attempt in range(UPTO_ATTEMPTS):
        s = seed if attempt == 0 else int.from_bytes(
            hashlib.sha256(f"mmkit/upto/{kind}/{form}/{upto}/{seed}/{attempt}".encode()).digest()[:3], "little")
        try:
            q = make_question(kind, s, form, None if era is None else str(era), difficulty)
        except RuntimeError:
            continue
        if taught.operations(q) <= allowed:
            params = {"kind": kind, "seed": seed, "upto": upto}
            if s != seed:
                params["draw"] = attempt
            params.update((k, v) for k, v in q.params.items() if k not in ("kind", "seed"))
            q.params = params
            return q
    raise InvalidArgument(f"no {form} question of kind {kind!r} at difficulty {difficulty} uses only what "
                          f"notebooks up to {upto} teach (tried {UPTO_ATTEMPTS} draws of seed {seed})")


#: how many draws generate(..., upto=...) tries before it gives up
UPTO_ATTEMPTS = 300
