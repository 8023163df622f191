"""The exact wording of every alert (docs/alerts.md lists them with their rules).

`message(kind, params, tone)` returns a title and a plain-text body; the
in-app list, the e-mail (both parts) and the webhook payload all carry this
same text.  Plans whose `alert_tone` is `mild` get calmer usage wording (L8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from farebox.alerts.domain.alerts import AlertKind


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    severity: str = "info"  # info | warning | critical


def when(value: Any) -> str:
    """A date and time as alerts show it: `12 March 2026, 09:00 UTC`."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return f"{value.day} {value:%B %Y, %H:%M} UTC"
    return str(value)


def plural(unit: str, n: int | None = 2) -> str:
    return unit if n == 1 or unit.endswith("s") else f"{unit}s"


def _usage(p: Mapping[str, Any], tone: str) -> Message:
    unit, percent, used, limit = p.get("unit", "unit"), p["percent"], p["used"], p["limit"]
    units = plural(unit)
    if tone == "mild":  # L8: usage goes on and is billed; nothing is blocked
        if percent >= 100:
            return Message(
                f"You have used the {limit} {units} included in your plan",
                f"You have used {used} of the {limit} {units} included in your plan this period. "
                f"Nothing stops: additional {units} are billed at the end of the period.",
            )
        return Message(
            f"You have used {percent}% of your included {units}",
            f"You have used {used} of the {limit} {units} included in your plan this period. "
            f"Additional {units} will be billed at the end of the period.",
        )
    if percent >= 100:
        if p.get("policy") == "overage":
            return Message(
                f"{unit.capitalize()} limit exceeded",
                f"You have used {used} of the {limit} {units} included in your plan this period. "
                f"Additional {units} are billed at the end of the period.",
                "warning",
            )
        return Message(
            f"{unit.capitalize()} limit reached",
            f"You have used all {limit} {units} of this period. New attendees cannot join until you upgrade "
            f"your plan or the next period starts; attendees already counted can still rejoin.",
            "critical",
        )
    return Message(
        f"{unit.capitalize()} limit almost reached",
        f"You have used {used} of your {limit} {units} this period ({percent}%). Upgrade your plan to avoid "
        f"interruptions.",
        "warning",
    )


def _session_limit(p: Mapping[str, Any], tone: str) -> Message:
    used, limit = p["used"], p["limit"]
    if p["percent"] >= 100:
        return Message(
            "Session limit has been reached",
            f"Your agents have used {used} of your monthly limit of {limit} sessions. New sessions are refused "
            "until you raise the limit or the next period starts.",
            "critical",
        )
    return Message(
        "Session limit almost reached",
        f"Your agents have used {used} of your monthly limit of {limit} sessions ({p['percent']}%).",
        "warning",
    )


def _trial_ended(p: Mapping[str, Any], tone: str) -> Message:
    if p.get("cause") == "converted":
        return Message(
            "Your trial has ended",
            f"Your free trial has ended and your {p.get('plan', 'paid')} subscription is now active.",
        )
    return Message(
        "Your trial has ended",
        "Your free trial has ended. Your subscription has ended. Please upgrade your plan to continue.",
        "critical",
    )


def _cap(p: Mapping[str, Any], tone: str) -> Message:
    return Message(
        "Attendee limit exceeded: upgrade required",
        f"{p['count']} attendees joined your session, over your plan's limit of {p['limit']}. Nobody was removed, "
        "but you need to upgrade your plan before you start new sessions.",
        "critical",
    )


_FIXED: dict[AlertKind, Any] = {
    AlertKind.OCCURRENCE_ENDING_SOON: lambda p, t: Message(
        f"{p['minutes_left']} minutes left",
        f"This session ends in {p['minutes_left']} minutes, at {when(p['deadline'])}, the longest your plan allows. "
        "Everyone will be removed then.",
        "warning",
    ),
    AlertKind.TRIAL_USAGE: lambda p, t: Message(
        f"You have used {p['percent']}% of your trial {plural(p.get('unit', 'session'))}",
        f"You have used {p['used']} of the {p['bound']} {plural(p.get('unit', 'session'))} of your free trial. "
        "Upgrade your plan to keep going when the trial ends.",
        "warning",
    ),
    AlertKind.TRIAL_DAYS_LEFT: lambda p, t: Message(
        f"{p['days']} {'day' if p['days'] == 1 else 'days'} left in your trial",
        f"Your free trial ends on {when(p['trial_ends_at'])}. Upgrade your plan to keep your agents running.",
        "warning",
    ),
    AlertKind.PAYMENT_FAILED: lambda p, t: Message(
        "Payment failed",
        f"We could not collect your payment. Your service continues until {when(p['grace_ends_at'])}; "
        "please update your payment method before then.",
        "critical",
    ),
    AlertKind.GRACE_ENDING: lambda p, t: Message(
        "Your grace period ends soon",
        f"Your payment is still pending. Your grace period ends on {when(p['grace_ends_at'])}; after that, "
        "new attendees and sessions are refused.",
        "critical",
    ),
    AlertKind.GRACE_EXPIRED: lambda p, t: Message(
        "Grace period expired",
        "Your payment is overdue and the grace period has expired. New attendees and sessions are refused until you "
        "pay.",
        "critical",
    ),
    AlertKind.PAYMENT_SETTLED: lambda p, t: Message(
        "Payment received", "Thank you: your payment was received and your subscription is active."
    ),
    AlertKind.CANCELLATION_SCHEDULED: lambda p, t: Message(
        "Cancellation scheduled",
        f"Your subscription will be canceled on {when(p['effective_at'])}. Everything keeps working until then, "
        "and you can reactivate it before that date.",
    ),
    AlertKind.CANCELLATION_REVOKED: lambda p, t: Message(
        "Subscription reactivated", "Your subscription will no longer be canceled; it renews as usual."
    ),
    AlertKind.CANCELED: lambda p, t: Message(
        "Subscription canceled",
        "Your subscription has ended; your account is now on the free plan."
        if p.get("to") == "free"
        else "Your subscription has ended. Please upgrade your plan to continue.",
    ),
    AlertKind.PLAN_CHANGE_SCHEDULED: lambda p, t: Message(
        "Upcoming plan change",
        f"Your plan changes to {p['plan']} on {when(p['starts_at'])}. You can cancel this change until then.",
    ),
    AlertKind.PLAN_CHANGE_CANCELED: lambda p, t: Message(
        "Plan change canceled", f"The plan change planned for {when(p['starts_at'])} was canceled."
    ),
    AlertKind.PLAN_CHANGED: lambda p, t: Message(
        "Plan changed", f"Your plan is now {p['plan']}, from {when(p['starts_at'])}."
    ),
    AlertKind.INVOICE_ISSUED: lambda p, t: Message(
        f"Invoice {p['number']} issued", f"Invoice {p['number']} for {p['total']} has been issued."
    ),
}


def message(kind: AlertKind | str, params: Mapping[str, Any], tone: str = "standard") -> Message:
    kind = AlertKind(kind)
    if kind is AlertKind.USAGE_THRESHOLD:
        return _usage(params, tone)
    if kind is AlertKind.SESSION_LIMIT:
        return _session_limit(params, tone)
    if kind is AlertKind.TRIAL_ENDED:
        return _trial_ended(params, tone)
    if kind is AlertKind.CAP_EXCEEDED:
        return _cap(params, tone)
    return _FIXED[kind](params, tone)
