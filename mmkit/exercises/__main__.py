"""Command line: print exercises (and, with -c, their answers).

    python -m mmkit.exercises -k cow -s 7 [-f inverse] [-e 5.7] [-d 3] [-n 10] [-c]
    python -m mmkit.exercises --list
"""

import argparse
import sys

from . import DIFFICULTIES, FORMS, KINDS, generate


def _era(text):
    from ..era import ERAS
    if text not in ERAS:
        raise argparse.ArgumentTypeError(f"unknown era {text!r}; eras are {', '.join(ERAS)}")
    return text


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative int, not {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative int, not {text!r}")
    return v


def _count(text):
    v = _seed(text)
    if v < 1:
        raise argparse.ArgumentTypeError("the count must be at least 1")
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mmkit.exercises",
                                 description="Seeded mmkit exercises with computed answers.")
    ap.add_argument("-k", "--kind", choices=list(KINDS), default="cow")
    ap.add_argument("-s", "--seed", type=_seed, default=0, help="first seed (default 0)")
    ap.add_argument("-n", "--count", type=_count, default=1, help="number of consecutive seeds")
    ap.add_argument("-f", "--form", choices=FORMS, default="predict")
    ap.add_argument("-e", "--era", type=_era, default=None,
                    help="kernel era (default 6.18; drawn at difficulty 3)")
    ap.add_argument("-d", "--difficulty", type=int, choices=DIFFICULTIES, default=2)
    ap.add_argument("-u", "--upto", default=None,
                    help="only what notebooks up to this one teach, as the notebooks draw them (e.g. 00)")
    ap.add_argument("-c", "--compute", action="store_true", help="also print the answers")
    ap.add_argument("--list", action="store_true", help="list the kinds and exit")
    args = ap.parse_args(argv)
    if args.list:
        for k in KINDS.values():
            print(f"{k.name:9} notebooks/{k.notebook}.ipynb  {k.title}  (forms: {', '.join(k.forms)})")
        return 0
    if args.compute:
        from ..release import guard
        guard("python -m mmkit.exercises -c (it prints the answers)")
    if args.form not in KINDS[args.kind].forms:
        ap.error(f"kind {args.kind!r} offers the forms {', '.join(KINDS[args.kind].forms)}")
    for seed in range(args.seed, args.seed + args.count):
        q = generate(args.kind, seed, args.form, args.era, args.difficulty, upto=args.upto)
        print(str(q))
        if args.compute:
            print()
            print(q.explanation())
        print("\n" + "-" * 72 + "\n")
    return 0


if __name__ == "__main__":
    from ..release import ReleaseModeError
    try:
        sys.exit(main())
    except ReleaseModeError as e:
        print(f"python -m mmkit.exercises: {e}", file=sys.stderr)
        sys.exit(3)
