"""The suite tells the truth about what it ran.

A conftest hook sees every item of the session, so a skip meant for the
browser tests once landed on all 453 tests of a machine without Chromium and
``make test`` said "all green" having checked nothing.  These tests run a
slice of the suite in a child pytest with Playwright made unimportable and
Chromium's path pointed nowhere (the browser is then missing on every
machine, CI's included) and check that only
the browser tests skip, and that the run says so in one plain line.
"""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_without_browser(tmp_path, *paths):
    shim = tmp_path / "shim" / "playwright"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("playwright made unimportable by the test")\n')
    env = {k: v for k, v in os.environ.items() if k != "MMKIT_REQUIRE_ALL"}
    env["MMKIT_CHROMIUM"] = str(tmp_path / "no-chromium-here")
    env["PYTHONPATH"] = os.pathsep.join([str(shim.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *paths],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return out.returncode, out.stdout + out.stderr


def test_without_a_browser_only_browser_tests_skip(tmp_path):
    """Without Playwright the browser tests skip and every other collected test still runs and passes."""
    rc, text = _run_without_browser(tmp_path, "tests/e2e", "tests/test_errors.py")
    assert rc == 0, text
    counts = dict((w, int(n)) for n, w in re.findall(r"(\d+) (passed|skipped|failed)", text.splitlines()[-1]))
    assert counts.get("passed", 0) >= 20, text          # test_errors.py's tests ran
    assert counts.get("skipped", 0) >= 1, text          # the browser tests did not
    skipped = re.findall(r"SKIPPED \[\d+\] ([^:\s]+)", text)
    assert skipped and all(p.startswith("tests/e2e/") for p in skipped), text


def test_a_partial_run_says_what_did_not_run(tmp_path):
    """A run with skips ends with one plain line naming the skipped part and how to get it."""
    rc, text = _run_without_browser(tmp_path, "tests/e2e", "tests/test_errors.py")
    line = [ln for ln in text.splitlines() if ln.startswith("mmkit: NOT a full run")]
    assert len(line) == 1, text
    assert "browser test" in line[0] and "apt-get install chromium" in line[0], line[0]
