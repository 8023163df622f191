"""The admission and metering rules as pure functions (no I/O)."""
