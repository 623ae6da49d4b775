"""How many examples a property test runs. Each test names the count it runs under the default profile (`make test`);
the ``unit`` profile (`make unit`, registered in tests/conftest.py) runs a fifth of it, so the fast lane still
exercises every property without paying for the search the thorough lane does. The tests replaying a whole recorded
file take the same share of its rows (the FTX month's bars, the big CSVs of streams/ingest/test_file_frames.py)."""

from __future__ import annotations

from hypothesis import settings

DEFAULT = 100  # hypothesis's own max_examples: the default profile runs each count as written
LEAST = 3  # a property tried on fewer examples than this is hardly tried


def example_count(count: int) -> int:
    """``count`` scaled by the loaded profile's max_examples (read when the test module is imported, after
    the profile is loaded; ``settings()`` inherits the loaded profile, and is never None as ``settings.default``
    may be typed)."""
    return max(LEAST, count * settings().max_examples // DEFAULT)
