"""The pipeline is plain Python: its tests need no Home Assistant instance and no sockets.

The package conftest turns on two autouse fixtures that start Home Assistant (custom integrations,
loopback sockets); overriding them here keeps these tests plain and fast.
"""

from __future__ import annotations

from collections.abc import Callable
import itertools

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No Home Assistant instance needed here."""


@pytest.fixture(autouse=True)
def allow_loopback_sockets() -> None:
    """No sockets needed here."""


@pytest.fixture
def ids() -> Callable[[], str]:
    """Deterministic object ids: "obj1", "obj2", ..."""
    counter = itertools.count(1)
    return lambda: f"obj{next(counter)}"
