"""SQLite's write turn within a process: one holder at a time, handed over first come first served,
re-entrant per thread, and given up after a timeout."""

from __future__ import annotations

import threading
import time

from farebox.storage.writer_queue import WriterQueue


def _wait_until(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_one_holder_at_a_time_among_many_threads():
    queue, inside, most, done = WriterQueue(), [0], [0], [0]

    def work() -> None:
        me = threading.get_ident()
        for _ in range(200):
            assert queue.acquire(10)
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0)
            inside[0] -= 1
            done[0] += 1
            queue.release(me)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] == 1 and done[0] == 16 * 200


def test_the_turn_goes_to_the_waiters_in_the_order_they_asked_and_is_re_entrant():
    queue, order = WriterQueue(), []
    me = threading.get_ident()
    assert queue.acquire(1) and queue.acquire(1)  # re-entrant: two releases needed

    def wait(name: str) -> None:
        assert queue.acquire(10)
        order.append(name)
        queue.release(threading.get_ident())

    threads = []
    for name in ("a", "b", "c"):
        threads.append(threading.Thread(target=wait, args=(name,)))
        threads[-1].start()
        waiting = len(threads)
        _wait_until(lambda: len(queue._waiting) == waiting)  # noqa: B023 - called within this iteration
    queue.release(me)
    time.sleep(0.02)
    assert order == []  # still held once
    queue.release(me)
    for t in threads:
        t.join(10)
    assert order == ["a", "b", "c"]


def test_a_waiter_gives_up_after_its_timeout_and_leaves_the_queue():
    queue = WriterQueue()
    assert queue.acquire(1)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(queue.acquire(0.05)))
    t.start()
    t.join(5)
    assert result == [False] and not queue._waiting
    queue.release(threading.get_ident())
    t = threading.Thread(target=lambda: result.append(queue.acquire(0.05)))
    t.start()
    t.join(5)
    assert result == [False, True]


def test_asked_for_no_wait_the_turn_is_refused_at_once_while_held_and_given_when_free():
    queue, answers = WriterQueue(), []
    assert queue.acquire(0)
    other = threading.Thread(target=lambda: answers.append(queue.acquire(0)))
    other.start()
    other.join(5)
    assert answers == [False] and not queue._waiting  # refused without queueing
    queue.release(threading.get_ident())
    other = threading.Thread(target=lambda: answers.append(queue.acquire(0)))
    other.start()
    other.join(5)
    assert answers == [False, True]


def test_a_caller_waiting_behind_short_turns_only_waits_while_every_turn_ahead_is_short():
    """The API's event loop waits for the turn behind other admission decisions (short turns), and not at all
    behind a longer writer (an ingestion chunk), holding or waiting."""
    queue, me = WriterQueue(), threading.get_ident()
    answers: list[bool] = []

    def ask(**kw) -> threading.Thread:
        thread = threading.Thread(target=lambda: answers.append(queue.acquire(5, **kw)))
        thread.start()
        return thread

    assert queue.acquire(0)  # a long writer
    ask(behind_short=True).join(5)
    assert answers == [False]
    queue.release(me)

    assert queue.acquire(0, short=True)  # a decision
    waiter = ask(short=True, behind_short=True)
    _wait_until(lambda: len(queue._waiting) == 1)
    queue.release(me)
    waiter.join(5)
    assert answers == [False, True]
    assert queue._holder == waiter.ident and queue._holder_short
    queue.release(waiter.ident)

    assert queue.acquire(0, short=True)
    took: list[bool] = []
    long_waiter = threading.Thread(target=lambda: took.append(queue.acquire(5)))  # a long writer in line
    long_waiter.start()
    _wait_until(lambda: len(queue._waiting) == 1)
    ask(behind_short=True).join(5)
    assert answers == [False, True, False]  # not behind the long one either, though a short one holds the turn
    queue.release(me)
    long_waiter.join(5)
    assert took == [True] and not queue._holder_short
    queue.release(long_waiter.ident)


def test_the_checkpointers_restart_takes_a_short_turn_and_gives_it_back():
    """The log's RESTART holds the writers back for a few milliseconds: the API's loop may wait for it like for a
    decision (a long turn would send every decision arriving meanwhile to a worker thread)."""
    from farebox.storage.engine import _Checkpointer

    queue, seen = WriterQueue(), []

    class Log:
        def execute(self, sql: str) -> Log:
            if "RESTART" in sql:
                seen.append((queue._holder, queue._holder_short))
            return self

        def fetchall(self) -> list:
            return []

    _Checkpointer()._restart(Log(), queue)
    assert seen == [(threading.get_ident(), True)]
    assert queue._holder is None
