"""Command line: print exercises (and, with -c, their answers).

    python -m mmkit.exercises -k cow -s 7 [-f inverse] [-e 5.7] [-n 10] [-c]
    python -m mmkit.exercises --list
"""

import argparse
import sys

from . import FORMS, KINDS, generate


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m mmkit.exercises",
                                 description="Seeded mmkit exercises with computed answers.")
    ap.add_argument("-k", "--kind", choices=list(KINDS), default="cow")
    ap.add_argument("-s", "--seed", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("-n", "--count", type=int, default=1, help="number of consecutive seeds")
    ap.add_argument("-f", "--form", choices=FORMS, default="predict")
    ap.add_argument("-e", "--era", default="6.18")
    ap.add_argument("-c", "--compute", action="store_true", help="also print the answers")
    ap.add_argument("--list", action="store_true", help="list the kinds and exit")
    args = ap.parse_args(argv)
    if args.list:
        for k in KINDS.values():
            print(f"{k.name:9} notebooks/{k.notebook}.ipynb  {k.title}  (forms: {', '.join(k.forms)})")
        return 0
    for seed in range(args.seed, args.seed + args.count):
        q = generate(args.kind, seed, args.form, args.era)
        print(str(q))
        if args.compute:
            print()
            print(q._checker.solution_text(q) if q._checker is not None else q.explanation())
        print("\n" + "-" * 72 + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
