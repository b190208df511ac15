"""Graded work with nbgrader: seeded exercises as an nbgrader assignment.

:func:`export_nbgrader` writes an nbgrader course directory with one
assignment notebook built from seeded exercises:

* every question is drawn with a **per-student seed**: the notebook's
  locked set-up cell asks :func:`student_id` who is answering, and
  :func:`seed_for` turns (assignment, student, question number) into a
  seed, so students sitting side by side get different programs and the
  autograder regenerates exactly the questions each student saw;
* every answer goes into an **answer cell** (an nbgrader solution cell:
  the lecturer's source computes the key, the release has ``answer_N = ...``);
* every question has an **autograded test cell** worth ``points`` (1 by
  default): a visible test (the answer can be read) and **hidden tests**
  (``### BEGIN HIDDEN TESTS``) that score it with partial credit (the
  share of its parts answered right; the number of parts varies with the
  seed, the points do not) --
  nbgrader removes them from the student version and puts them back when
  it autogrades.

The lecturer's round trip (all nbgrader's own commands, run in the course
directory, with the kit's venv active -- ``. .venv/bin/activate`` -- or as
``.venv/bin/python -m nbgrader ...``: nbgrader runs its database migrations
with the ``alembic`` command, which is only on the PATH of an active venv)::

    python -m mmkit.grading export course/ --assignment ps1 --kinds cow,pin,fork
    cd course && nbgrader generate_assignment ps1      # release/ps1: no answers, no hidden tests
    # hand out release/ps1/ps1.ipynb (or nbgrader release_assignment on a hub);
    # collect into submitted/<student>/ps1/ps1.ipynb (or nbgrader collect)
    nbgrader autograde ps1                              # runs the hidden tests
    nbgrader export                                     # grades.csv, one row per student
    python -m mmkit.grading grades course/              # or this: the grade table

Who is the student?  In the autograder, the student folder nbgrader
runs the notebook in (``autograded/<student>/<assignment>``); on the hub,
``$JUPYTERHUB_USER`` (so hub user names must be the nbgrader student ids);
elsewhere ``$MMKIT_STUDENT``.  The student version works in release mode
(``MMKIT_RELEASE=1``): it never needs an answer key.

Feedback (``--feedback``): ``verdict`` (the default, for marks) makes the
assignment's set-up cell set ``MMKIT_RELEASE_FEEDBACK=verdict``, so that
under release mode ``qN.check()`` says only right or wrong for the whole
answer (no per-part verdicts, no misconception text that may name the
right value); ``full`` keeps the per-part feedback (formative work).  The
intro cell says which the assignment uses.  Neither is a sandbox: the
student runs Python, so marks are only as safe as the hidden tests, which
run on the lecturer's machine.
"""

import argparse
import hashlib
import json
import os
import sys

from .errors import InvalidArgument, MMError

__all__ = ["student_id", "seed_for", "question", "readable", "score", "export_nbgrader", "grade_table",
           "DEFAULT_SET"]

#: the default problem set: (kind, form, difficulty) per question
DEFAULT_SET = (("fork", "predict", 2), ("cow", "predict", 2), ("pin", "predict", 2), ("cow", "inverse", 2))


def student_id():
    """Who is answering: the student folder while nbgrader autogrades,
    else ``$MMKIT_STUDENT``, else the hub's ``$JUPYTERHUB_USER``.

    Raises
    ------
    MMError
        If none says, with what to set.
    """
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        # nbgrader runs the notebook in <course>/autograded/<student>/<assignment>/
        here = os.path.abspath(os.getcwd())
        return os.path.basename(os.path.dirname(here))
    sid = os.environ.get("MMKIT_STUDENT") or os.environ.get("JUPYTERHUB_USER")
    if not sid:
        raise MMError("Who is answering? Set your student id before the first cell: in a notebook "
                      "%env MMKIT_STUDENT=your-id (on the course hub this is automatic).")
    return sid


def seed_for(assignment, student, number):
    """The seed of question ``number`` of ``assignment`` for ``student``
    (a stable hash, the same on every machine)."""
    h = hashlib.sha256(f"mmkit/{assignment}/{student}/{number}".encode()).digest()
    return int.from_bytes(h[:3], "little")


def question(assignment, student, number, kind, form="predict", difficulty=2, era=None):
    """Question ``number`` of ``assignment`` as ``student`` sees it."""
    from .exercises import generate
    return generate(kind, seed_for(assignment, student, number), form=form, era=era, difficulty=difficulty)


def readable(q, answer):
    """The visible test: raise AssertionError unless ``answer`` is an
    answer to ``q`` that its checker can read (right or wrong)."""
    if answer is ...:
        raise AssertionError("No answer yet: replace ... with your answer.")
    ok, msgs = q.evaluate(answer)
    if ok is None:
        raise AssertionError(" ".join(msgs))


def score(q, answer, points=1):
    """The hidden test: the points ``answer`` earns out of ``points``: the
    share of its parts that are right (a multiple-choice or build
    question: all or nothing)."""
    from . import release
    if release.verdict_only() and os.environ.get("NBGRADER_EXECUTION") != "autograde":
        release.guard("grading.score() (per-part credit) outside nbgrader's autograder")
    if answer is ...:
        return 0.0
    with release._internal():
        return _score(q, answer, points)


def _score(q, answer, points):
    ok, _ = q._evaluate(answer)
    if ok is None:
        return 0.0
    if ok or q._checker is not None or len(q.parts) == 1:
        return float(points) * bool(ok)
    from .exercises.question import _same
    vals = q._collect(answer, {})
    truth = [p.fn(q._model_run()) for p in q.parts]
    right = sum(_same(p, p.normalize(v), t) for p, v, t in zip(q.parts, vals, truth))
    return round(float(points) * right / len(q.parts), 4)


# -- the assignment notebook --------------------------------------------------------------
def _cell(kind, source, grade_id, grade=False, solution=False, locked=True, points=None):
    import nbformat
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = make(source)
    meta = {"grade": grade, "solution": solution, "locked": locked, "task": False,
            "grade_id": grade_id, "schema_version": 3}
    if grade:
        meta["points"] = points
    c.metadata["nbgrader"] = meta
    return c


_TASK = {"predict": "Read the program and say what it does to the page: the question lists what to give.",
         "inverse": "Which of the programs shown ends in the state described? Answer with its letter.",
         "build": "Write a function `build(k)` that brings a page into the state described and returns "
                  "(process, address)."}

#: feedback setting -> what the assignment's intro says about it
FEEDBACK = {"verdict": "check() says only right or wrong for the whole answer",
            "full": "check() says which part is wrong and explains it"}


def assignment_notebook(assignment, problems=DEFAULT_SET, title=None, points=1, feedback="verdict"):
    """The nbgrader source notebook of ``assignment``: ``problems`` is a
    list of (kind, form, difficulty); each question is worth ``points``;
    ``feedback`` is ``"verdict"`` or ``"full"`` (see the module docstring)."""
    import nbformat
    from .exercises import FORMS, KINDS
    if feedback not in FEEDBACK:
        raise InvalidArgument(f"feedback must be one of {', '.join(FEEDBACK)}, not {feedback!r}")
    if feedback == "verdict":
        how = ("you may try an answer with `qN.check(...)`: in this assignment it says only whether the whole "
               "answer is right or wrong (not which part, and no explanation)")
    else:
        how = ("try your answer with `qN.check(...)` as often as you like (it says right or wrong and explains "
               "a wrong part)")
    cells = [_cell("markdown", f"# {title or assignment}\n\n"
                   "Each question below is drawn for you alone (your student id picks the seed). For each: read "
                   f"the question; {how}; `qN.hint()` gives the hints this course allows. Then leave your final "
                   "answer in the answer cell as `answer_N = ...`. Only the answer cells are graded; each "
                   "question is worth the points its title shows, shared among its parts.\n\n"
                   f"*Feedback in this assignment: {FEEDBACK[feedback]}.*", "intro")]
    cells.append(_cell("code", "import os\nimport mmkit.grading as grading\n\n"
                       f"os.environ['MMKIT_RELEASE_FEEDBACK'] = {feedback!r}   # {FEEDBACK[feedback]}\n"
                       "STUDENT = grading.student_id()   # on the course hub: your hub user name\n"
                       f"ASSIGNMENT = {assignment!r}\n"
                       "print(f'Questions for student {STUDENT!r}')", "setup"))
    for n, (kind, form, difficulty) in enumerate(problems, 1):
        if kind not in KINDS or form not in FORMS or form not in KINDS[kind].forms:
            raise InvalidArgument(f"problem {n}: no {form!r} question of kind {kind!r}")
        pts = points
        cells.append(_cell("markdown", f"## Question {n}: {KINDS[kind].title} ({pts:g} point{'' if pts == 1 else 's'})"
                           f"\n\n{_TASK[form]}", f"q{n}-title"))
        cells.append(_cell("code", f"q{n} = grading.question(ASSIGNMENT, STUDENT, {n}, {kind!r}, {form!r}, "
                           f"{difficulty})\nq{n}.show()", f"q{n}-question"))
        cells.append(_cell("code", f"# try: q{n}.check(...)   answer as the question's last line says\n"
                           f"answer_{n} = ...\n"
                           "### BEGIN SOLUTION\n"
                           f"answer_{n} = q{n}.answer_key()\n"
                           "### END SOLUTION", f"q{n}-answer", solution=True, locked=False))
        cells.append(_cell("code", f"grading.readable(q{n}, answer_{n})   # your answer can be read\n"
                           "### BEGIN HIDDEN TESTS\n"
                           f"grading.score(q{n}, answer_{n}, points={pts!r})\n"
                           "### END HIDDEN TESTS", f"q{n}-test", grade=True, points=pts))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


_CONFIG = '''# nbgrader configuration written by python -m mmkit.grading export
c = get_config()  # noqa
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course!r}
# the student version keeps "answer_N = ..." and nothing of the solution
c.ClearSolutions.code_stub = {{"python": ""}}
# a student id is a folder name: autograde creates the student records it meets
c.Autograde.create_student = True
'''


def export_nbgrader(course_dir, assignment="ps1", problems=DEFAULT_SET, course_id="mmkit", title=None, points=1,
                    feedback="verdict"):
    """Write an nbgrader course directory (``nbgrader_config.py`` and
    ``source/<assignment>/<assignment>.ipynb``) at ``course_dir``; returns
    the notebook's path.  Existing notebooks are overwritten, nothing else
    is touched."""
    import nbformat
    if not isinstance(assignment, str) or not assignment.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument(f"assignment must be a simple name such as 'ps1', not {assignment!r}")
    course_dir = os.path.abspath(course_dir)
    src = os.path.join(course_dir, "source", assignment)
    os.makedirs(src, exist_ok=True)
    cfg = os.path.join(course_dir, "nbgrader_config.py")
    with open(cfg, "w") as f:
        f.write(_CONFIG.format(root=course_dir, course=course_id))
    path = os.path.join(src, f"{assignment}.ipynb")
    nbformat.write(assignment_notebook(assignment, problems, title, points, feedback), path)
    return path


def grade_table(course_dir, assignment=None):
    """The grade table nbgrader's gradebook holds: one dict per (student,
    assignment) with ``student``, ``assignment``, ``score``, ``max_score``."""
    from nbgrader.api import Gradebook
    url = "sqlite:///" + os.path.join(os.path.abspath(course_dir), "gradebook.db")
    rows = []
    with Gradebook(url) as gb:
        for a in gb.assignments:
            if assignment is not None and a.name != assignment:
                continue
            for s in gb.students:
                try:
                    sub = gb.find_submission(a.name, s.id)
                except Exception:
                    score, max_score = 0.0, a.max_score
                else:
                    score, max_score = sub.score, sub.max_score
                rows.append({"student": s.id, "assignment": a.name, "score": float(score),
                             "max_score": float(max_score)})
    return sorted(rows, key=lambda r: (r["assignment"], r["student"]))


def _problems(text):
    out = []
    for item in text.split(","):
        bits = item.strip().split(":")
        if not bits[0]:
            continue
        kind = bits[0]
        form = bits[1] if len(bits) > 1 and bits[1] else "predict"
        difficulty = int(bits[2]) if len(bits) > 2 else 2
        out.append((kind, form, difficulty))
    if not out:
        raise argparse.ArgumentTypeError("give at least one kind, e.g. cow,pin:predict,cow:inverse")
    return tuple(out)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mmkit.grading",
                                 description="Seeded mmkit exercises as an nbgrader assignment.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="write an nbgrader course directory with one assignment",
                        description="Write COURSE_DIR/nbgrader_config.py and COURSE_DIR/source/ASSIGNMENT/"
                                    "ASSIGNMENT.ipynb. Then, with the venv active (. .venv/bin/activate): "
                                    "cd COURSE_DIR && nbgrader generate_assignment ASSIGNMENT.")
    ex.add_argument("course_dir", help="the nbgrader course directory to write (created if missing)")
    ex.add_argument("--assignment", default="ps1",
                    help="the assignment name, also the notebook's name and part of every seed (default ps1)")
    ex.add_argument("--course-id", default="mmkit", help="nbgrader's course id (default mmkit)")
    ex.add_argument("--title", help="the notebook's heading (default: the assignment name)")
    ex.add_argument("--feedback", choices=sorted(FEEDBACK), default="verdict",
                    help="what check() tells students in release mode: 'verdict' only right or wrong for the "
                         "whole answer (default, for marks), 'full' per-part feedback (formative)")
    ex.add_argument("--points", type=float, default=1, help="points per question (default 1)")
    ex.add_argument("--problems", type=_problems, default=DEFAULT_SET,
                    help="comma-separated kind[:form[:difficulty]], e.g. fork,cow,pin,cow:inverse "
                         "(default fork,cow,pin,cow:inverse; kinds: python -m mmkit.exercises --list)")
    gr = sub.add_parser("grades", help="print the grade table (after nbgrader autograde)")
    gr.add_argument("course_dir", help="the nbgrader course directory (holding gradebook.db)")
    gr.add_argument("--assignment", help="only this assignment (default: all)")
    gr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if args.cmd == "export":
        points = int(args.points) if args.points == int(args.points) else args.points
        path = export_nbgrader(args.course_dir, args.assignment, args.problems, args.course_id, title=args.title,
                               points=points, feedback=args.feedback)
        print(f"wrote {path} (feedback: {FEEDBACK[args.feedback]})\n"
              f"next (with the venv active: . .venv/bin/activate):\n"
              f"  cd {args.course_dir} && nbgrader generate_assignment {args.assignment}")
        return 0
    rows = grade_table(args.course_dir, args.assignment)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{'student':20} {'assignment':12} {'score':>6} {'max':>6}")
        for r in rows:
            print(f"{r['student']:20} {r['assignment']:12} {r['score']:6g} {r['max_score']:6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
