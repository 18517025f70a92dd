"""Day-2 tests reuse the engine tests' lab: one lab per module and version, reset before each test."""

from __future__ import annotations

from tests.integration.engine.conftest import lab_factory

__all__ = ["lab_factory"]
