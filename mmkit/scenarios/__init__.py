"""Named scenarios shared by notebooks, widgets, tests and the conformance suite.

>>> from mmkit.scenarios import get, names
>>> get("fork")
<Scenario 'fork': 3 steps>
>>> "vmsplice_child" in names()
True
"""

from .cow_selftest import COW_CASES, NON_ANON_CASES, era_table, run_case
from .thp_cow import MTHP_CASES, THP_CASES, thp_cases
from .topics import LARGE_TOPICS, TOPICS

__all__ = ["TOPICS", "LARGE_TOPICS", "THP_CASES", "MTHP_CASES", "thp_cases", "COW_CASES", "NON_ANON_CASES", "get", "names", "era_table", "run_case"]


def names(large=False):
    """Names of the topic scenarios (with ``large=True`` those of the
    large-folio topics, :data:`LARGE_TOPICS`)."""
    return list(LARGE_TOPICS if large else TOPICS)


def get(name):
    """The topic scenario or cow.c case called ``name``."""
    if name in TOPICS:
        return TOPICS[name]
    if name in LARGE_TOPICS:
        return LARGE_TOPICS[name]
    for c in COW_CASES + NON_ANON_CASES + THP_CASES + MTHP_CASES:
        if c.name == name:
            return c
    from ..errors import InvalidArgument
    raise InvalidArgument(f"unknown scenario {name!r}; topics: {', '.join(TOPICS)}")
