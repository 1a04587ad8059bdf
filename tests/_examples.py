"""How many examples a Hypothesis property test runs.

`make unit` (the main CPython, with coverage) runs every property at its full
count. The CPython matrix (scripts/test-matrix) runs the same suite on five
more interpreters to find what differs between interpreters, not to draw
more inputs: it sets ``VDT_TEST_EXAMPLES_SCALE`` (a fraction) and each
property runs that share of its examples, never fewer than 10.
"""

import os

SCALE = float(os.environ.get("VDT_TEST_EXAMPLES_SCALE", "1"))


def examples(count: int) -> int:
    """``count`` scaled by ``VDT_TEST_EXAMPLES_SCALE`` (at least 10, or ``count``)."""
    return max(min(count, 10), round(count * SCALE))
