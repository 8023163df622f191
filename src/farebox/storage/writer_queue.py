"""SQLite's one write lock, handed to the threads of a process in the order they asked.

SQLite's own wait for its write lock polls with growing sleeps (up to 100 ms
between tries), so a thread that commits and begins again at once, like a
batch applied in chunks, can win the lock over and over while a live
decision sleeps.  The threads of one process therefore queue here, first
come first served, before `BEGIN IMMEDIATE`: a waiting decision gets the
lock at the next commit.  Other processes still meet SQLite's busy wait.
"""

from __future__ import annotations

import threading
from collections import deque


class WriterQueue:
    """The turn is handed straight to the thread at the head of the queue: a release wakes that one
    thread, not every waiter (with 32 requests waiting, waking all of them at each commit cost
    more interpreter-lock hand-overs than the decision itself).

    A turn may be asked for as `short` (one admission decision, well under a millisecond), and a
    caller may wait only `behind_short` ones: the API's event loop waits briefly for the turn when
    only decisions are ahead of it, and not at all behind a longer writer (an ingestion chunk, a
    billing pass)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._holder: int | None = None
        self._holder_short = False
        self._depth = 0
        self._waiting: deque[tuple[int, threading.Event, bool]] = deque()

    def acquire(self, timeout: float, *, short: bool = False, behind_short: bool = False) -> bool:
        """Wait for the turn of this thread; False after `timeout` seconds (at once with 0, or with
        `behind_short` when a writer that is not `short` holds the turn or waits for it).  Re-entrant per
        thread."""
        me = threading.get_ident()
        with self._mutex:
            if self._holder == me:
                self._depth += 1
                return True
            if self._holder is None and not self._waiting:
                self._holder, self._holder_short, self._depth = me, short, 1
                return True
            if timeout <= 0:
                return False
            if behind_short and not (self._holder_short and all(w[2] for w in self._waiting)):
                return False
            entry = (me, threading.Event(), short)
            self._waiting.append(entry)
        if entry[1].wait(timeout):
            return True  # handed over: `_holder` is already this thread
        with self._mutex:
            if self._holder == me:  # handed over just as the wait timed out
                return True
            self._waiting.remove(entry)
            return False

    def release(self, owner: int) -> None:
        """End `owner`'s turn (a thread id: a connection may be given back by another thread)."""
        with self._mutex:
            if self._holder != owner:
                return
            self._depth -= 1
            if self._depth:
                return
            if self._waiting:
                nxt, turn, short = self._waiting.popleft()
                self._holder, self._holder_short, self._depth = nxt, short, 1
                turn.set()
            else:
                self._holder, self._holder_short = None, False
