"""Billable conversation sessions (A1, A2).

A message when no window is open opens a 24-hour window (rolling, not
calendar days); the next message after it closes opens the next.  On an
*Answered only* plan a window is billed only once the customer writes in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


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
    window: Window


def on_message(
    current: Window | None, at: datetime, sender: Sender, *, length: timedelta, answered_only: bool
) -> MessageEffect:
    """A1: open a window when none is open; A2: bill it unless it is outbound-only on an answered-only plan.

    Messages are decided in the order they take the conversation's lock, which can
    differ by milliseconds from their time stamps when several processes serve one
    conversation; a message less than a window's length before the open window is
    counted in it, so a late decision never opens an overlapping second window."""
    billable_now = not answered_only or sender is Sender.CUSTOMER
    # A message stamped a moment before the open window started was decided after it
    # (it waited for the conversation's lock): it belongs to that window, not to a new one.
    if current is not None and current.started_at - length < at < current.ends_at:
        if current.billed or not billable_now:
            return MessageEffect(False, False, current)
        return MessageEffect(False, True, Window(current.started_at, current.ends_at, True))
    window = Window(at, at + length, billable_now)
    return MessageEffect(True, billable_now, window)


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
