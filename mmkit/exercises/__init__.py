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
the right value; ``q.hint()`` gives hints 1, 2, 3 in turn; ``q.solution()``
shows the answer and the state after every line, folded.

Kinds (one per notebook): see :data:`KINDS`.  Forms: ``"predict"`` (predict
values), ``"inverse"`` (pick the program that produced a state),
``"build"`` (write a program that produces a state).  From a shell::

    python -m mmkit.exercises -k cow -s 7        # the question
    python -m mmkit.exercises -k cow -s 7 -c     # ... and its answer
    python -m mmkit.exercises -k pin -s 1 -n 30 -c > answers.txt   # a class set
"""

import os

from ..errors import InvalidArgument
from .kinds import KINDS, make_question
from .predict import predict
from .question import Part, Question

__all__ = ["generate", "predict", "KINDS", "catalogue", "Question", "Part", "FORMS"]

FORMS = ("predict", "inverse", "build")


def catalogue():
    """{kind: (notebook, title, forms)} for every exercise kind.  (Not called
    ``kinds``: that name is the submodule :mod:`mmkit.exercises.kinds`.)"""
    return {k.name: (k.notebook, k.title, k.forms) for k in KINDS.values()}


def generate(kind, seed=None, form="predict", era="6.18"):
    """A new exercise of ``kind``.

    Parameters
    ----------
    kind : str
        One of ``catalogue()``: ``counters``, ``fork``, ``cow``, ``pin``,
        ``unshare``, ``migrate``, ``truncate``.
    seed : int, optional
        The same seed gives the same exercise (default: a random seed, shown
        with the question so it can be reproduced).
    form : {"predict", "inverse", "build"}
    era : str
        The kernel the program runs on (``"6.18"`` by default; try ``"5.7"``).

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
    _era(era)
    if seed is None:
        seed = int.from_bytes(os.urandom(3), "little")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgument(f"seed must be a non-negative int, not {seed!r}")
    return make_question(kind, seed, form, str(era))
