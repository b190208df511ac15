"""Named scenarios shared by notebooks, widgets, tests and the conformance suite.

>>> from mmkit.scenarios import get, names
>>> get("fork")
<Scenario 'fork': 3 steps>
>>> "vmsplice_child" in names()
True
"""

from .cow_selftest import COW_CASES, NON_ANON_CASES, era_table, run_case
from .topics import TOPICS

__all__ = ["TOPICS", "COW_CASES", "NON_ANON_CASES", "get", "names", "era_table", "run_case"]


def names():
    """Names of the topic scenarios."""
    return list(TOPICS)


def get(name):
    """The topic scenario or cow.c case called ``name``."""
    if name in TOPICS:
        return TOPICS[name]
    for c in COW_CASES + NON_ANON_CASES:
        if c.name == name:
            return c
    from ..errors import InvalidArgument
    raise InvalidArgument(f"unknown scenario {name!r}; topics: {', '.join(TOPICS)}")
