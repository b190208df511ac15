"""``python -m mmkit.live record``: see :mod:`mmkit.live.record`."""

import sys

USAGE = ("usage: python -m mmkit.live record [-o FILE] [-s SCENARIO]...\n"
         "  record   run every conformance scenario on the model and on this kernel (root, Linux) and save\n"
         "           the observations that readers without a live backend are shown (mmkit.live.recorded)")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "record":
        from .record import main as record_main
        return record_main(argv[1:])
    print(f"unknown command {argv[0]!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
