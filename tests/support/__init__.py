"""Helpers for tests; fixtures live in ``tests.fixtures`` and the conftest files."""
