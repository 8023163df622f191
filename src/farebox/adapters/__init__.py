"""Adapters at the edge: storage, catalog files, clocks, e-mail, webhooks, payments."""
