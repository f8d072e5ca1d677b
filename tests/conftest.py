"""Fixtures shared by the test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sil import passes as registry
from sil.passes import registered_passes


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Passes registered by a test disappear after it (the library's passes are loaded first)."""
    registered_passes()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    yield
