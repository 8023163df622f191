"""Billable conversation sessions (A1, A2).

A message when no window is open opens a 24-hour window (rolling, not
calendar days); the next message after it closes opens the next.  On an
*Answered only* plan a window is billed only once the customer writes in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Sender(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Window:
    started_at: datetime
    ends_at: datetime
    billed: bool


@dataclass(frozen=True, slots=True)
class MessageEffect:
    """What one message does: open a window, bill the open one, or nothing."""

    opens: bool  # a new window starts at this message
    bills: bool  # one billable session is counted now
    window: Window  # the conversation's current window after this message (the latest one)
    earlier: Window | None = None  # the window before it, or the last late message's (`on_message`)


def on_message(
    current: Window | None,
    at: datetime,
    sender: Sender,
    *,
    length: timedelta,
    answered_only: bool,
    earlier: Window | None = None,
    last: datetime | None = None,
) -> MessageEffect:
    """A1: open a window when none is open; A2: bill it unless it is outbound-only on an answered-only plan.

    A message may be decided after messages stamped later: by milliseconds, when
    several processes serve one conversation, or by days, when it is sent late.

    - Less than a window's length before the open window: by A1 the window starts at
      this message and the open window's first message falls in it.  The open window
      moves back to start here.  With `last` (the conversation's latest message) a
      window's length or more after this one, the messages from there on make one more
      window, which becomes the open one (from `last`, the latest such message known;
      its exact start is not kept) and is billed now when the plan bills every message;
      without `last`, the message is counted in the open window.
    - A window's length or more before it (a late event): decided against `earlier`
      (the window before the open one, or the last such message's) as a message is
      against the open window; one before both opens a window of its own, which
      becomes `earlier`.  The open window stays the current one.

    So a replay of lost messages in time order is counted window by window, and a late
    message bills a window farebox had counted already only if that window is neither
    the open one nor `earlier`."""
    billable_now = not answered_only or sender is Sender.CUSTOMER
    if current is not None and at <= current.started_at - length:
        if earlier is not None and earlier.started_at - length < at < earlier.ends_at:
            inner = on_message(earlier, at, sender, length=length, answered_only=answered_only)
            return MessageEffect(False, inner.bills, current, inner.window)
        return MessageEffect(True, billable_now, current, Window(at, at + length, billable_now))
    if current is not None and at < current.started_at and last is not None:
        moved = Window(at, at + length, current.billed or billable_now)
        moved_bills = billable_now and not current.billed
        if last < moved.ends_at:
            return MessageEffect(False, moved_bills, moved, earlier)
        # the open window's messages from `moved.ends_at` on make one more window
        following = Window(last, last + length, not answered_only)
        return MessageEffect(True, moved_bills or following.billed, following, moved)
    if current is not None and current.started_at - length < at < current.ends_at:
        if current.billed or not billable_now:
            return MessageEffect(False, False, current, earlier)
        return MessageEffect(False, True, Window(current.started_at, current.ends_at, True), earlier)
    window = Window(at, at + length, billable_now)
    return MessageEffect(True, billable_now, window, current if current is not None else earlier)


def stored_windows(row: Mapping[str, Any], length: timedelta) -> tuple[Window | None, Window | None]:
    """A conversation's stored open window and its `earlier` one (`on_message`'s `current` and `earlier`)."""
    current = Window(row["window_started_at"], row["window_ends_at"], bool(row["window_billed"]))
    start = row["earlier_started_at"]
    earlier = None if start is None else Window(start, start + length, bool(row["earlier_billed"]))
    return (current if row["windows"] else None), earlier


def window_columns(effect: MessageEffect) -> dict[str, Any]:
    """The stored windows after a message (`stored_windows` reads them back)."""
    w, e = effect.window, effect.earlier
    return {
        "window_started_at": w.started_at,
        "window_ends_at": w.ends_at,
        "window_billed": w.billed,
        "earlier_started_at": None if e is None else e.started_at,
        "earlier_billed": None if e is None else e.billed,
    }


def unbilled(effect: MessageEffect) -> MessageEffect:
    """The same message on a plan that meters no billable sessions: nothing is billed, no window is billed."""
    earlier = None if effect.earlier is None else replace(effect.earlier, billed=False)
    return replace(effect, bills=False, window=replace(effect.window, billed=False), earlier=earlier)


def billable_sessions(
    messages: list[tuple[datetime, Sender]], *, length: timedelta = timedelta(hours=24), answered_only: bool = False
) -> int:
    """How many billable sessions a conversation's messages make (A1, A2); for checks and tests."""
    window: Window | None = None
    billed = 0
    for at, sender in sorted(messages):
        effect = on_message(window, at, sender, length=length, answered_only=answered_only)
        window = effect.window
        billed += effect.bills
    return billed
