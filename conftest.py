"""Hypothesis profiles for the whole suite.

- "default" (`make test`): modest, so the suite stays quick.
- "fuzz" (`make fuzz`, HYPOTHESIS_PROFILE=fuzz): many more examples, for tests marked `fuzz`.

A fuzz test is marked `@pytest.mark.fuzz` and leaves max_examples to the profile (no max_examples in its @settings),
so that `make fuzz` runs it as long as the profile says.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("fuzz", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
