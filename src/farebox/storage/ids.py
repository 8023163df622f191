"""Identifiers: a short prefix saying what the thing is, then text that sorts
in creation order within a process (time, a counter) plus randomness."""

from __future__ import annotations

import itertools
import secrets
import time

_counter = itertools.count()


def new_id(prefix: str) -> str:
    return f"{prefix}_{time.time_ns():016x}{next(_counter) % 65536:04x}{secrets.token_hex(3)}"


def new_ids(prefix: str, n: int) -> list[str]:
    """`n` ids as `new_id` makes them, at one instant (the counter keeps them apart): for a set of rows."""
    at = f"{prefix}_{time.time_ns():016x}"
    salt = secrets.token_hex(3 * n)
    return [f"{at}{next(_counter) % 65536:04x}{salt[6 * i : 6 * i + 6]}" for i in range(n)]
