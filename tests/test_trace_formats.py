"""Every trace event of every shipped scenario formats, in every era.

A format string with a placeholder its arguments do not fill only fails
when the trace is read -- in a stepper, after the step that emitted it.
"""

from types import SimpleNamespace

import pytest

from mmkit import Kernel, MMError
from mmkit.era import ERAS
from mmkit.scenarios import get, names

SCENARIOS = list(names()) + list(names(large=True))


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_event_of_a_scenario_formats_in_every_era(name):
    """Reading the trace of a scenario, step by step, raises nowhere."""
    sc = get(name)
    for era in ERAS:
        k = Kernel(era=era)
        s = SimpleNamespace()
        for i in range(len(sc.steps)):
            try:
                sc.run_step(k, s, i)
            except MMError:
                pass
            for event in k.trace:
                str(event)
