"""`farebox reprice`: recorded usage replayed under another catalog (docs/repricing.md)."""
