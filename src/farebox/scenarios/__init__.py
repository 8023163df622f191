"""Executable pricing scenarios (`farebox scenario run`, docs/scenarios.md)."""
