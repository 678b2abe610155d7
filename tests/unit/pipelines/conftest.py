"""Fixtures for pipeline and step tests (see tests/pipekit.py)."""

from pipekit import _clear_calls, engine, load_app, registry

__all__ = ["_clear_calls", "engine", "load_app", "registry"]
