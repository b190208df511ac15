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
