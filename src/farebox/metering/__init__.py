"""Metering and admission: joins, sessions, conversations, ingestion, usage (docs/admission.md)."""
