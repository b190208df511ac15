"""Suite-wide settings.

Tests that need the live kernel (root, /proc/kpageflags, io_uring, gcc),
Debian's chromium or npm skip with a reason where those are missing.  CI
runs as root on a real kernel with all of them installed by ``.ci/run``,
which sets ``MMKIT_REQUIRE_ALL=1``: there a skip is a failure, so a green CI
run cannot hide a live, browser or slide test that did not run.
"""

import os

import pytest

REQUIRE_ALL = os.environ.get("MMKIT_REQUIRE_ALL") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_ALL and rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        rep.longrepr = f"skipped, but MMKIT_REQUIRE_ALL=1 requires every test to run: {rep.longrepr}"


# Hypothesis: random examples on a developer's machine (to find new
# sequences), a fixed derivation under CI (so a submission's result is
# reproducible and a failure there is a real, replayable one).
try:
    from hypothesis import settings as _hsettings
    _hsettings.register_profile("ci", derandomize=True)
    if os.environ.get("CI"):
        _hsettings.load_profile("ci")
except ImportError:                     # hypothesis is a dev dependency
    pass


# What did not run, in one plain line at the end of every run, so that a
# green run is never mistaken for a full one.  Skips are grouped by the part
# of the machine they need; each reason already says how to get that part.
def _part(report):
    path = report.nodeid.split("::")[0]
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if path.startswith("tests/e2e/"):
        part = "browser"
    elif path in ("tests/test_live.py", "tests/test_conformance.py") or "live" in report.keywords:
        part = "live-kernel"
    elif path == "tests/test_hub.py":
        part = "hub"
    elif "npm" in reason:
        part = "slide-deck"
    else:
        part = "other"
    return part, reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if not hasattr(r, "wasxfail")]
    if not skipped:
        terminalreporter.write_line("mmkit: every collected test ran (none skipped)")
        return
    groups = {}
    for r in skipped:
        part, reason = _part(r)
        groups.setdefault(part, {}).setdefault(reason, 0)
        groups[part][reason] += 1
    said = []
    for part, reasons in groups.items():
        n = sum(reasons.values())
        said.append(f"{n} {part} test{'s' if n != 1 else ''} skipped: " + " / ".join(reasons))
    terminalreporter.write_line("mmkit: NOT a full run -- " + "; ".join(said), yellow=True, bold=True)


@pytest.fixture(autouse=True)
def _not_a_student_release(monkeypatch):
    """Tests read answer keys: run them outside the student release mode even
    inside a hub session (MMKIT_RELEASE=1) or next to an mmkit-release.toml;
    the variable wins over any file.  Release-mode tests set it themselves."""
    monkeypatch.setenv("MMKIT_RELEASE", "0")
