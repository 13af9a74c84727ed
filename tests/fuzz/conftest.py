"""Fuzzing of the parsers users feed (hypothesis), run in the unit tier.

Two hypothesis profiles: ``unit`` (the default, part of ``make test``: a bounded number of
examples per parser, derandomized so a run is reproducible) and ``chaos`` (``make chaos``:
many more examples, a fresh random seed each run, printed on failure). Pick one with
``pytest --hypothesis-profile=chaos``; ``RCTL_FUZZ_EXAMPLES`` overrides the count of either.
Neither keeps an example database: the corpus (tests/fuzz/corpus/) is what is kept, and
every file there is replayed on every run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
_EXAMPLES = int(os.environ.get("RCTL_FUZZ_EXAMPLES", "0"))

settings.register_profile(
    "unit",
    max_examples=_EXAMPLES or 150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_SLOW_OK,
)
settings.register_profile(
    "chaos",
    max_examples=_EXAMPLES or 3000,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_OK,
)
settings.load_profile("unit")
