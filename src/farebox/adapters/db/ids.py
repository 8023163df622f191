"""Identifiers: a short prefix saying what the thing is, then text that sorts
in creation order within a process (time, a counter) plus randomness."""

from __future__ import annotations

import itertools
import secrets
import time

_counter = itertools.count()


def new_id(prefix: str) -> str:
    return f"{prefix}_{time.time_ns():016x}{next(_counter) % 65536:04x}{secrets.token_hex(3)}"
