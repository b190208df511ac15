"""The examples in the core modules' docstrings run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["mmkit", "mmkit.era", "mmkit.kernel", "mmkit.scenario", "mmkit.scenarios", "mmkit.table"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    """Every docstring example of the module passes."""
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
