"""Metering queries (pools, ledger, occurrences, conversations) and the batch writes of ingestion."""
