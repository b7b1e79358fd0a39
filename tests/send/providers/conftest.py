"""Fixtures of the provider tests: one ``server`` fixture for every ``test_<provider>.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from send.providers.support import StandIn


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests that send spec-invalid requests on purpose."""
    config.addinivalue_line(
        "markers", "spec_invalid: the test sends requests that break the spec on purpose"
    )


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The running stand-in for the module's provider, as its ``STAND_IN`` says.

    After the test, a spec-checking server must have seen no request breaking the spec,
    unless the module turned ``spec_checked`` off or the test is marked ``spec_invalid``.
    """
    stand_in = getattr(request.module, "STAND_IN", None)
    if not isinstance(stand_in, StandIn):
        pytest.fail(f"{request.module.__name__}: set STAND_IN = StandIn(...) to use `server`")
    args = [request.getfixturevalue("fake")] if stand_in.with_fake else []
    with stand_in.start(*args, **stand_in.options) as running:
        yield running
        if stand_in.spec_checked and request.node.get_closest_marker("spec_invalid") is None:
            assert running.invalid == [], running.invalid[0].error
