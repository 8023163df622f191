"""Audit and export queries."""
