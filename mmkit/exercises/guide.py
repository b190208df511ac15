"""The computed parts of the instructor guide (docs/instructor-guide.md).

The guide's answers and misconception lists are not typed in: they sit
between ``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED -->``
markers and are written by this module from the notebooks themselves and
from :mod:`mmkit.exercises.misconceptions`:

* ``answers NB`` -- every ``predict(...)`` question of notebook NB and
  every seeded exercise it draws (``generate(...)`` at the seed the
  notebook sets), with the answer key computed by the model;
* ``misconceptions NB`` -- the misconceptions the checker can name for
  the questions of NB (from the part types its questions ask);
* ``misconceptions`` -- all of them, with their explanations.

::

    python -m mmkit.exercises.guide            # rewrite the blocks in docs/instructor-guide.md
    python -m mmkit.exercises.guide --check    # exit 1 if the guide is stale (what the test runs)
"""

import argparse
import ast
import json
import pathlib
import re
import sys
from .. import release


ROOT = pathlib.Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "instructor-guide.md"
NOTEBOOKS = ROOT / "notebooks"

_BLOCK = re.compile(r"<!-- BEGIN GENERATED (?P<name>[^>]*?) -->\n(?P<body>.*?)<!-- END GENERATED -->", re.S)


# -- what a notebook asks -------------------------------------------------------------------
_CACHE = {}


def _cached(fn):
    """Memoise a per-notebook function on (path, mtime): the guide's check asks each notebook twice."""
    def wrapper(path):
        p = pathlib.Path(path)
        key = (fn.__name__, str(p.resolve()), p.stat().st_mtime_ns)
        if key not in _CACHE:
            _CACHE[key] = fn(path)
        return _CACHE[key]
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@_cached
def notebook_questions(path):
    """``[(variable, call source, Question)]`` for every ``predict(...)`` and
    ``generate(...)`` a notebook assigns to a variable, in order.  The
    calls are evaluated with the notebook's literal constants (``SEED = 1``)
    and without their ``hints=`` (hints do not change the answer)."""
    from . import generate, predict
    nb = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    env = {"predict": predict, "generate": generate}
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        try:
            tree = ast.parse("\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in tree.body:
            if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                continue
            name, value = node.targets[0].id, node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, (int, str)):
                env[name] = value.value
                continue
            if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id in ("predict", "generate")):
                continue
            value.keywords = [k for k in value.keywords if k.arg != "hints"]
            code = ast.unparse(value)
            q = eval(compile(ast.Expression(value), str(path), "eval"), dict(env))
            out.append((name, code, q))
    return out


# -- the labs' tasks -------------------------------------------------------------------------
@_cached
def notebook_tasks(path):
    """``[(variable, call source, Task, answers)]`` for every lab task
    (``tasks.X_task(...)``) a notebook assigns, with its answers computed
    by the model and each confirmed by the task's own checker: a list of
    ``(label, answer)`` (several where the task accepts a choice)."""
    from ..labs import attack, tasks
    nb = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    env = {"tasks": tasks, "attack": attack}
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in tree.body:
            if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                continue
            name, value = node.targets[0].id, node.value
            if isinstance(value, ast.Constant):
                env[name] = value.value
                continue
            if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                    and isinstance(value.func.value, ast.Name) and value.func.value.id in ("tasks", "attack")
                    and (value.func.attr.endswith("_task") or value.func.attr == "find_attack")):
                continue
            obj = eval(compile(ast.Expression(value), str(path), "eval"), env)
            env[name] = obj
            if value.func.attr == "find_attack":
                continue
            answers = _task_answers(value.func.attr, obj, value, env)
            for label, a in answers:
                ok = obj.evaluate(a)[0]
                if ok is not True:
                    raise AssertionError(f"{path}: {name}: the computed answer {a!r} does not pass its own check")
            out.append((name, ast.unparse(value), obj, answers))
    return out


def _args(call, env, names):
    vals = dict(zip(names, [eval(compile(ast.Expression(a), "<arg>", "eval"), env) for a in call.args]))
    for k in call.keywords:
        vals[k.arg] = eval(compile(ast.Expression(k.value), "<arg>", "eval"), env)
    return vals


def _task_answers(fn, task, call, env):
    import inspect as _inspect
    from ..era import ERAS
    from ..labs import attack, tasks
    sig = _inspect.signature(getattr(tasks, fn))
    a = {k: v.default for k, v in sig.parameters.items() if v.default is not _inspect.Parameter.empty}
    a.update(_args(call, env, list(sig.parameters)))
    if fn == "flip_task":
        names = [c.name for c in tasks._cases()]
        fails = tasks._flip_fails(tasks._era(a["base"]).name, a["rule"], a["value"])[0]
        return [("", sorted(names.index(f) + 1 for f in fails))]
    if fn == "sequence_task":
        r = attack.find_attack(a["era"], a["prop"], max_ops=a["max_ops"])
        return [("one answer (the attack finder's first)", r.first.ops_str())]
    if fn == "length_task":
        return [("", tasks._shortest(a["era"], a["prop"], a["max_ops"]))]
    if fn == "eras_task":
        import itertools
        eras = list(ERAS)
        for n in range(len(eras) + 1):
            for combo in itertools.combinations(eras, n):
                if task.evaluate(list(combo))[0]:
                    return [(f"for the sequence {a['seq']!r}", list(combo))]
        raise AssertionError("no set of eras passes eras_task's check")
    res = a.get("results") or tasks._results()
    if fn == "winner_task":
        out = {}
        for wname, r in res.items():
            best = min(tasks._work(r, m) for m in tasks._CHOICES)
            out[wname] = sorted(m for m in tasks._CHOICES if tasks._work(r, m) == best)
        ties = "; ".join(f"{w}: {' or '.join(ms)}" for w, ms in out.items() if len(ms) > 1)
        return [(f"ties, any counts: {ties}" if ties else "", {w: ms[0] for w, ms in out.items()})]
    if fn == "defend_task":
        r = res[a["workload"]]
        answers = []
        for mode in tasks._CHOICES[1:]:
            d_at = r.costs["exact"].total("atomics") - r.costs[mode].total("atomics")
            d_st = r.costs[mode].total("walk_steps") - r.costs["exact"].total("walk_steps")
            answers.append((f"defending {mode}", (mode, float("inf") if d_st <= 0 else round(d_at / d_st, 3))))
        return answers
    if fn == "large_task":
        from ..labs.large import run_large_all
        big = run_large_all()
        return [("", {w: sorted(tasks._large_wrong(r)) for w, r in big.items()})]
    raise ValueError(f"the guide does not know how to answer {fn}")


def tasks_block(path):
    rows = ["| in the notebook | task | answer |", "|---|---|---|"]
    for name, code, t, answers in notebook_tasks(path):
        ans = "; ".join(f"{label + ': ' if label else ''}`{a!r}`" for label, a in answers if a is not None)
        rows.append(f"| `{name} = {code}` | {t.title.replace('|', chr(92) + '|')} | {ans.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n" if len(rows) > 2 else ""


@release.internal
def _answer_text(q):
    key = q._answer_key()
    if q._checker is not None:
        if hasattr(key, "code"):
            return "one program that works: `" + "; ".join(key.code().splitlines()) + "`"
        return f"**{key}**"
    vals = key if len(q.parts) > 1 else (key,)
    return ", ".join(f"{p.name} = **{v!r}**" if not isinstance(v, str) else f"{p.name} = **{v}**"
                     for p, v in zip(q.parts, vals))


def answers_block(path):
    """The markdown table of a notebook's questions (and lab tasks) and their answers."""
    labs = tasks_block(path)
    rows = ["| in the notebook | question | answer |", "|---|---|---|"]
    for name, code, q in notebook_questions(path):
        if "form" in q.params:
            what = f"seeded exercise: {q.params_line()}"
        else:
            what = q.text
        what = what.replace("|", "\\|")
        rows.append(f"| `{name} = {code}` | {what} | {_answer_text(q)} |")
    if len(rows) == 2:
        return labs or "This notebook asks no `predict()` question and draws no seeded exercise.\n"
    return "\n".join(rows) + "\n" + ("\n" + labs if labs else "")


# -- which misconceptions -------------------------------------------------------------------
_DATA = ("zero", "0", "1", "2", "3", "4", "SIGBUS", "SIGSEGV", "EFAULT", "old data", "new data")


def _wrong_values(part, truth):
    t = part.type
    if t in ("refcount", "mapcount", "pincount"):
        if truth == "zero page":
            return [0, 1, 2, 3]
        c = set(range(0, 6)) | {truth + d for d in (-1024, -1023, -2, -1, 1, 2, 1023, 1024)}
        return sorted(v for v in c if v >= 0 and v != truth)
    if t in ("exclusive", "writable", "present"):
        return [not truth]
    if t in part.CHOICES:
        return [c for c in part.CHOICES[t] if c != truth]
    if t == "migrated":
        return [v for v in ("migrated", "EAGAIN", "not migrated", "EBUSY") if v != truth]
    if t == "pin_result":
        return [v for v in ("ok", "EFAULT", "EINVAL", "EPERM") if v != truth]
    return [v for v in _DATA if v != truth]


def all_misconceptions():
    """key -> Misconception for every misconception the exercises can name:
    misconceptions.py's and any ``*MISCONCEPTIONS`` table a kind module of
    mmkit.exercises registers (such as the large-folio kind's)."""
    import importlib
    import pkgutil
    from . import __path__ as pkg_path
    from .misconceptions import MISCONCEPTIONS, Misconception
    out = dict(MISCONCEPTIONS)
    for info in pkgutil.iter_modules(pkg_path):
        if info.name in ("__main__", "guide"):
            continue
        mod = importlib.import_module(f"{__package__}.{info.name}")
        for attr, val in vars(mod).items():
            if attr.endswith("MISCONCEPTIONS") and isinstance(val, dict):
                out.update((k, m) for k, m in val.items() if isinstance(m, Misconception))
    return out


@release.internal
def question_misconceptions(q):
    """The misconceptions (key -> Misconception) the checker names for wrong
    answers to ``q`` (every plausible wrong value of every part is tried)."""
    from .misconceptions import diagnose
    from .question import _Context
    if q._checker is not None:
        return {}
    run = q._model_run()
    found = {}
    for p in q.parts:
        truth = p.fn(run)
        for v in _wrong_values(p, truth):
            m = diagnose(p, v, truth, _Context(q, p, run))
            if m is not None:
                found.setdefault(m.key, m)
    return found


@_cached
def notebook_misconceptions(path, seeds=range(1, 11)):
    """The misconceptions the checker names for a notebook's questions:
    its predict() questions and, for each exercise kind it draws, seeds
    1-10 of the predict form at the notebook's difficulty."""
    from . import generate
    found, kinds = {}, []
    for _, _, q in notebook_questions(path):
        k = (q.params.get("kind"), q.params.get("difficulty"))
        if k[0] is not None and k not in kinds:
            kinds.append(k)
        for key, m in question_misconceptions(q).items():
            found.setdefault(key, m)
    for kind, difficulty in kinds:
        for s in seeds:
            for key, m in question_misconceptions(generate(kind, s, difficulty=difficulty)).items():
                found.setdefault(key, m)
    return found


def misconceptions_block(path):
    found = notebook_misconceptions(path)
    if not found:
        return "The checker names no misconception here: this notebook's tasks are judged by running the model.\n"
    return "\n".join(f"- **{m.title}** (`{k}`)" for k, m in found.items()) + "\n"


def _header(path):
    nb = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    title = first.splitlines()[0].lstrip("# ").strip()
    rows = dict(re.findall(r"^\| \*\*(.+?)\*\* \| (.+?) \|$", first, flags=re.M))
    return title, rows


def notebooks_block(notebooks=NOTEBOOKS):
    """Each notebook's title, time and core part, from its own header table."""
    out = ["| notebook | time | core (the rest is optional) |", "|---|---|---|"]
    for p in sorted(pathlib.Path(notebooks).glob("*.ipynb")):
        title, rows = _header(p)
        core = re.sub(r"\s*\*\*Optional:\*\*.*", "", rows.get("Core", "")).rstrip(". ")
        core = re.sub(r"\]\((?!http)([^)]*?)\.ipynb", r"](../notebooks/\1.ipynb", core)
        out.append(f"| `{p.name}`: {title} | {rows.get('Time', '-')} | {core or '-'} |")
    return "\n".join(out) + "\n"


# -- the course plans -------------------------------------------------------------------------
# A meeting: (name, minutes, [items]); an item is (minutes, what) or (minutes, notebook stem, what in class,
# homework).  A notebook item's minutes are its core time in class; when they are less than the notebook's
# stated time (its header's "Time"), the homework names the rest of the core.  plan_sums() checks them.
PLANS = {
    "plan-90": ("Five lectures and two labs of 90 minutes", [
        ("Lecture 1", 90, [(10, "intro"), (30, "00-orientation", "sections 1–7 and the first exercise", ""),
                           (30, "01-fork", "sections 1–4", ""), (20, "discussion, a second seeded exercise")]),
        ("Lecture 2", 90, [(10, "recap"), (45, "02-cow", "sections 1–5", ""),
                           (15, "the CVE, 5.7 against 6.18 side by side"),
                           (20, "exercises (`cow`, predict and inverse)")]),
        ("Lecture 3", 90, [(40, "03-gup", "sections 1–6", ""), (35, "04-unshare", "sections 1–6", ""),
                           (15, "discussion")]),
        ("Lecture 4", 90, [(40, "05-migration", "sections 1–5", ""), (35, "06-truncation", "sections 1–6", ""),
                           (15, "discussion")]),
        ("Lab A", 90, [(10, "briefing"), (60, "07-history-lab", "table, why, attack finder, task phases 1–4", ""),
                       (20, "debrief")]),
        ("Lab B", 90, [(45, "08-mapcount-lab", "the tiny run, both task phases, the results", ""),
                       (30, "graded problem set (nbgrader, below)"), (15, "debrief")]),
        ("Lecture 5", 90, [(75, "09-large-folios", "sections 1–6", ""), (15, "questions, a seeded `folio` exercise")]),
    ]),
    "plan-50": ("Nine 50-minute lectures and two 90-minute labs", [
        ("Lecture 1", 50, [(5, "intro"), (30, "00-orientation", "sections 1–7 and the first exercise", ""),
                           (15, "discussion")]),
        ("Lecture 2", 50, [(5, "recap"), (30, "01-fork", "sections 1–4", ""), (15, "a seeded `fork` exercise")]),
        ("Lecture 3", 50, [(45, "02-cow", "sections 1–5", ""), (5, "wrap-up")]),
        ("Lecture 4", 50, [(40, "03-gup", "sections 1–6", ""), (10, "discussion")]),
        ("Lecture 5", 50, [(35, "04-unshare", "sections 1–6", ""), (15, "discussion")]),
        ("Lecture 6", 50, [(40, "05-migration", "sections 1–5", ""), (10, "discussion")]),
        ("Lecture 7", 50, [(35, "06-truncation", "sections 1–6", ""), (15, "discussion")]),
        ("Lab A", 90, [(10, "briefing"), (60, "07-history-lab", "table, why, attack finder, task phases 1–4", ""),
                       (20, "debrief")]),
        ("Lab B", 90, [(45, "08-mapcount-lab", "the tiny run, both task phases, the results", ""),
                       (30, "graded problem set (nbgrader, below)"), (15, "debrief")]),
        ("Lecture 8", 50, [(5, "recap"), (45, "09-large-folios", "sections 1–4", "")]),
        ("Lecture 9", 50, [(5, "recap"), (30, "09-large-folios", "sections 5–6", ""),
                           (15, "a seeded `folio` exercise, questions")]),
    ]),
}


#: what the class leaves a notebook with (the plans' last column)
LEAVES = {
    "00-orientation": "the four counters `r m p AE`",
    "01-fork": "fork shares and write-protects, copies nothing",
    "02-cow": "copy or reuse is decided on the refcount; why the mapcount cannot decide (CVE-2020-29374)",
    "03-gup": "a reference from a pin in the counters; fork and pinned pages",
    "04-unshare": "read-only pins unshare",
    "05-migration": "what stops a move",
    "06-truncation": "\"not mapped\" needs no walk; a pin outlives its file",
    "07-history-lab": "the bugs and fixes of 5.7–5.19 as rule changes, found again by a search",
    "08-mapcount-lab": "the mapcount debate as measured costs",
    "09-large-folios": "folios, PMD vs PTE mappings, the deferred split and the zero page, \"maybe mapped shared\", "
                       "`CONFIG_NO_PAGE_MAPCOUNT`",
}


def stated_minutes(notebooks=NOTEBOOKS):
    """{stem: the core minutes the notebook's header states} (the first number of its "Time")."""
    out = {}
    for p in sorted(pathlib.Path(notebooks).glob("*.ipynb")):
        m = re.search(r"\d+", _header(p)[1].get("Time", ""))
        if m:
            out[p.stem] = int(m.group())
    return out


def plan_sums(name, notebooks=NOTEBOOKS):
    """[(meeting, minutes, the sum of its items, {stem: (in class, stated)})] of plan ``name``."""
    stated = stated_minutes(notebooks)
    rows = []
    for meeting, minutes, items in PLANS[name][1]:
        nbs = {it[1]: (it[0], stated.get(it[1])) for it in items if len(it) == 4}
        rows.append((meeting, minutes, sum(it[0] for it in items), nbs))
    return rows


def plan_block(name, notebooks=NOTEBOOKS):
    """The plan's table: per meeting, the minutes of each item, what of each notebook's core is done in
    class and what is left as homework (besides the optional sections and further seeded exercises)."""
    stated = stated_minutes(notebooks)
    title, meetings = PLANS[name]
    out = [f"**{title}** (every meeting's items add up to its length; notebook minutes are the core times "
           "the notebooks' headers state):", "",
           "| meeting | minutes | in class | homework | what the class leaves with |", "|---|---|---|---|---|"]
    for meeting, minutes, items in meetings:
        cls, home, leaves = [], [], []
        for it in items:
            if len(it) == 4:
                n, stem, what, hw = it
                cls.append(f"{n} notebook {stem[:2]} ({what})")
                leaves.append(LEAVES.get(stem, ""))
                if hw:
                    home.append(f"notebook {stem[:2]}: {hw}")
                elif n < stated.get(stem, n):
                    home.append(f"notebook {stem[:2]}: the rest of its core")
            else:
                cls.append(f"{it[0]} {it[1]}")
        labs = all(it[1].startswith(("07", "08")) for it in items if len(it) == 4)
        home.append("the optional sections" + ("" if labs else "; seeded exercises at other seeds"))
        out.append(f"| {meeting} | {minutes} | {' · '.join(cls)} | {'; '.join(home)} | {'; '.join(filter(None, leaves))} |")
    return "\n".join(out) + "\n"


def all_misconceptions_block():
    return "\n".join(f"- **{m.title}** (`{k}`): {m.explain}" for k, m in all_misconceptions().items()) + "\n"


# -- the guide ------------------------------------------------------------------------------
def block(name, notebooks=NOTEBOOKS):
    """The text of generated block ``name``."""
    if name == "misconceptions":
        return all_misconceptions_block()
    if name == "notebooks":
        return notebooks_block(notebooks)
    if name in PLANS:
        return plan_block(name, notebooks)
    what, _, nb = name.partition(" ")
    path = pathlib.Path(notebooks) / f"{nb}.ipynb"
    if what == "answers":
        return answers_block(path)
    if what == "misconceptions":
        return misconceptions_block(path)
    raise ValueError(f"unknown generated block {name!r}")


def notebooks_with_questions(notebooks=NOTEBOOKS):
    """Every notebook (stem) that asks a predict() question or draws an exercise."""
    return [p.stem for p in sorted(pathlib.Path(notebooks).glob("*.ipynb"))
            if notebook_questions(p) or _has_tasks(p)]


def _has_tasks(path):
    return re.search(r"tasks\.\w+_task\(", pathlib.Path(path).read_text(encoding="utf-8")) is not None


def regenerate(text, notebooks=NOTEBOOKS):
    """``text`` with every generated block rewritten."""
    with _lecturer():
        return _BLOCK.sub(lambda m: f"<!-- BEGIN GENERATED {m['name']} -->\n{block(m['name'], notebooks)}"
                                    "<!-- END GENERATED -->", text)


def problems(text, notebooks=NOTEBOOKS):
    """What is stale or missing in the guide ``text`` (empty: up to date)."""
    out = []
    names = [m["name"] for m in _BLOCK.finditer(text)]
    for nb in notebooks_with_questions(notebooks):
        for what in ("answers", "misconceptions"):
            if f"{what} {nb}" not in names:
                out.append(f"no generated block '{what} {nb}' for notebook {nb}")
    if "misconceptions" not in names:
        out.append("no generated block 'misconceptions' (all of them)")
    with _lecturer():
        for m in _BLOCK.finditer(text):
            nb = m["name"].partition(" ")[2]
            if nb and not (pathlib.Path(notebooks) / f"{nb}.ipynb").is_file():
                out.append(f"block '{m['name']}' names a notebook that is not in {notebooks}")
                continue
            if m["body"] != block(m["name"], notebooks):
                out.append(f"block '{m['name']}' is stale")
    return out


class _lecturer:
    """The guide is written by the lecturer: release mode does not apply."""

    def __enter__(self):
        import os
        self.saved = os.environ.get("MMKIT_RELEASE")
        os.environ["MMKIT_RELEASE"] = "0"

    def __exit__(self, *exc):
        import os
        if self.saved is None:
            os.environ.pop("MMKIT_RELEASE", None)
        else:
            os.environ["MMKIT_RELEASE"] = self.saved


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mmkit.exercises.guide", description=__doc__.split("\n")[0])
    ap.add_argument("guide", nargs="?", default=str(GUIDE))
    ap.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    args = ap.parse_args(argv)
    path = pathlib.Path(args.guide)
    text = path.read_text(encoding="utf-8")
    if args.check:
        found = problems(text)
        for p in found:
            print(p)
        return 1 if found else 0
    new = regenerate(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        print(f"rewrote the generated blocks of {path}")
    found = [p for p in problems(new) if "no generated block" in p]
    for p in found:
        print(p, "-- add the block by hand, then run this again")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
