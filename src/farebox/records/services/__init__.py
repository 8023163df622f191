"""Audit, export and retention use cases."""
