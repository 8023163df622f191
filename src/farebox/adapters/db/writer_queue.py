"""SQLite's one write lock, handed to the threads of a process in the order they asked (F2).

SQLite's own wait for its write lock polls with growing sleeps (up to 100 ms
between tries), so a thread that commits and begins again at once, like a
batch applied in chunks, can win the lock over and over while a live
decision sleeps.  The threads of one process therefore queue here, first
come first served, before `BEGIN IMMEDIATE`: a waiting decision gets the
lock at the next commit.  Other processes still meet SQLite's busy wait.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class WriterQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holder: int | None = None
        self._depth = 0
        self._waiting: deque[int] = deque()

    def acquire(self, timeout: float) -> bool:
        """Wait for the turn of this thread; False after `timeout` seconds.  Re-entrant per thread."""
        me = threading.get_ident()
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._holder == me:
                self._depth += 1
                return True
            self._waiting.append(me)
            while self._holder is not None or self._waiting[0] != me:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    if self._holder is not None or self._waiting[0] != me:
                        self._waiting.remove(me)
                        self._cond.notify_all()
                        return False
            self._waiting.popleft()
            self._holder, self._depth = me, 1
            return True

    def release(self, owner: int) -> None:
        """End `owner`'s turn (a thread id: a connection may be given back by another thread)."""
        with self._cond:
            if self._holder != owner:
                return
            self._depth -= 1
            if self._depth == 0:
                self._holder = None
                self._cond.notify_all()
