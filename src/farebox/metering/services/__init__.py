"""Admission, ingestion and usage use cases: each opens a unit of work, reads a snapshot,
asks the domain, writes the effects, commits."""
