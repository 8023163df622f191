"""Signals in, alerts out: listeners that write each alert to the outbox in the same transaction.

A listener turns a signal (docs/architecture.md, Signals) into `Alert`s with
the pure rules of `farebox.alerts.domain.alerts`, then `raise_alert` writes the
notification (unique per tenant and dedupe key, so each alert fires once,
G12) and the e-mails and webhooks owed for it, for the channels the operator
and the tenant have enabled.  Nothing is sent here: the worker's delivery
pass (`services.delivery`) sends afterwards, so a crash loses nothing.
Time-based alerts (trial days left, grace ending) are due items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from farebox.alerts import db as repo
from farebox.alerts.domain import messages as alert_messages
from farebox.alerts.domain.alerts import (
    Alert,
    AlertKind,
    days_left_due_times,
    grace_ending_due_at,
    trial_usage_alerts,
    usage_alerts,
)
from farebox.catalog.domain import Plan
from farebox.events import due, signals
from farebox.events.signals import Signal
from farebox.kernel.money import Money
from farebox.storage.ids import new_id
from farebox.storage.immutable_cache import ImmutableRowCache
from farebox.storage.uow import UnitOfWork
from farebox.subscriptions import db as subscriptions_repo
from farebox.subscriptions.domain.states import Status

CHANNELS = ("in_app", "email", "webhook")
TRIAL_DAYS_LEFT = "alert.trial_days_left"
GRACE_ENDING = "alert.grace_ending"


# --- writing an alert ----------------------------------------------------------------
def _enabled(settings: Mapping[tuple[str, str], bool], tenant_id: str) -> set[str]:
    """Channels on for this tenant: enabled by the operator and by the tenant (both default on)."""
    return {c for c in CHANNELS if settings.get((repo.OPERATOR, c), True) and settings.get((tenant_id, c), True)}


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}


def raise_alert(uow: UnitOfWork, *, tenant_id: str, alert: Alert, at: datetime, tone: str = "standard") -> str | None:
    """Write one alert and its deliveries; None if it had fired already (same dedupe key)."""
    return raise_alerts(uow, [Raised(tenant_id, alert, at, tone)])[0]


@dataclass(frozen=True)
class Raised:
    """An alert to write for a tenant (`raise_alert`'s arguments)."""

    tenant_id: str
    alert: Alert
    at: datetime
    tone: str = "standard"


def raise_alerts(uow: UnitOfWork, raised: Sequence[Raised]) -> list[str | None]:
    """`raise_alert` of many alerts, with each query and write made once for all of them
    (the billing run's `invoice.issued`); the notification ids, None where one had fired already."""
    if not raised:
        return []
    tenant_ids = sorted({r.tenant_id for r in raised})
    settings = repo.channel_settings(uow.conn, [repo.OPERATOR, *tenant_ids])
    channels = {t: _enabled(settings, t) for t in tenant_ids}
    rows: list[dict[str, Any]] = []
    for r in raised:
        message = alert_messages.message(r.alert.kind, r.alert.params, r.tone)
        rows.append({
            "tenant_id": r.tenant_id,
            "id": new_id("ntf"),
            "kind": r.alert.kind.value,
            "dedupe_key": r.alert.dedupe_key,
            "subscription_id": r.alert.subscription_id,
            "subject": r.alert.subject,
            "title": message.title,
            "body": message.body,
            "severity": message.severity,
            "data": {**_jsonable(r.alert.params), "tone": r.tone},
            "in_app": "in_app" in channels[r.tenant_id],
            "created_at": r.at,
        })
    inserted = repo.insert_notifications(uow.conn, rows)
    written = [(r, row) for r, row in zip(raised, rows, strict=True) if row["id"] in inserted]
    emailed = {r.tenant_id for r, _ in written if "email" in channels[r.tenant_id]}
    recipients = repo.billing_recipients_of(uow.conn, emailed) if emailed else {}
    endpoints = (
        repo.list_endpoints(uow.conn, enabled_only=True)
        if any("webhook" in channels[r.tenant_id] for r, _ in written)
        else []
    )
    deliveries = []
    for r, row in written:
        targets: list[tuple[str, str]] = []
        if "email" in channels[r.tenant_id]:
            targets += [("email", address) for address in recipients[r.tenant_id]]
        if "webhook" in channels[r.tenant_id]:
            targets += [
                ("webhook", ep["id"]) for ep in endpoints if not ep["kinds"] or r.alert.kind.value in ep["kinds"]
            ]
        deliveries += [
            {
                "tenant_id": r.tenant_id,
                "id": new_id("msg"),
                "notification_id": row["id"],
                "channel": channel,
                "target": target,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": None,
                "created_at": r.at,
            }
            for channel, target in targets
        ]
    repo.insert_deliveries(uow.conn, deliveries)
    return [row["id"] if row["id"] in inserted else None for row in rows]


# --- reading the plan behind a subscription, cheaply (usage.recorded is on the hot path) ----
_PLANS: ImmutableRowCache[Plan | None] = ImmutableRowCache()


def _plan_of(uow: UnitOfWork, tenant_id: str, subscription_id: str | None) -> Plan | None:
    """A subscription's plan never changes (a plan change is a new subscription), so it is cached."""
    if subscription_id is None:
        return None
    subscription_ref = subscription_id

    def load() -> Plan | None:
        subscription = subscriptions_repo.get(uow.conn, tenant_id, subscription_ref)
        return None if subscription is None else subscription.plan

    return _PLANS.get(uow.conn, subscription_id, load)


def _plans_of(uow: UnitOfWork, pairs: Sequence[tuple[str, str | None]]) -> dict[tuple[str, str | None], Plan | None]:
    """`_plan_of` of many `(tenant_id, subscription_id)`, the uncached ones read in one query."""
    found = subscriptions_repo.plans_of(uow.conn, sorted({(t, s) for t, s in pairs if s is not None}))
    return {(t, s): None if s is None else _PLANS.get(uow.conn, s, partial(found.get, (t, s))) for t, s in pairs}


def _tone(plan: Plan | None) -> str:
    return plan.alert_tone.value if plan is not None else "standard"


def _at(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _raise(
    uow: UnitOfWork,
    signal: Signal,
    kind: AlertKind,
    key: str,
    params: Mapping[str, Any] | None = None,
    *,
    subscription_id: str | None = None,
) -> None:
    sub_id = subscription_id if subscription_id is not None else signal.subject
    plan = _plan_of(uow, signal.tenant_id, sub_id)
    alert = Alert(kind, key, dict(params or {}), sub_id, signal.subject)
    raise_alert(uow, tenant_id=signal.tenant_id, alert=alert, at=signal.at, tone=_tone(plan))


# --- usage: L6, L8, A6, A3 ----------------------------------------------------------------
@signals.on("usage.recorded")
def on_usage_recorded(uow: UnitOfWork, signal: Signal) -> None:
    data = signal.data
    meter, before, after = data["meter"], int(data["before"]), int(data["after"])
    if after <= before:
        return
    plan = _plan_of(uow, signal.tenant_id, signal.subject)
    if plan is None:
        return
    assert signal.subject is not None
    found: list[Alert] = []
    limit = plan.limit(meter)
    if limit is not None and limit.alert_thresholds and not data["trial"]:
        # A6: a tenant's own session limit is what 80% and 100% are measured against
        in_force = data["limit"]
        kind = AlertKind.SESSION_LIMIT if limit.customer_limit else AlertKind.USAGE_THRESHOLD
        unit = _unit(uow, signal, meter)
        found += usage_alerts(
            subscription_id=signal.subject, period_start=data["period_start"], meter=meter, before=before, after=after,
            limit=None if in_force is None else int(in_force), percents=limit.alert_thresholds, kind=kind,
            params={"unit": unit, "policy": limit.policy.value},
        )
    trial = plan.trial
    if trial is not None and meter in trial.usage and trial.usage_alerts:
        candidates = trial_usage_alerts(
            subscription_id=signal.subject,
            meter=meter,
            before=before,
            after=after,
            bound=trial.usage[meter],
            percents=trial.usage_alerts,
        )
        if candidates:
            subscription = subscriptions_repo.get(uow.conn, signal.tenant_id, signal.subject)
            if subscription is not None and subscription.status is Status.TRIALING:
                found += [
                    Alert(a.kind, a.dedupe_key, {**a.params, "unit": _unit(uow, signal, meter)}, a.subscription_id)
                    for a in candidates
                ]
    for alert in found:
        raise_alert(uow, tenant_id=signal.tenant_id, alert=alert, at=signal.at, tone=_tone(plan))


def _unit(uow: UnitOfWork, signal: Signal, meter: str) -> str:
    """The meter's unit as the catalog names it (credit, session, attendee); cached per subscription."""
    def load() -> str:
        subscription = subscriptions_repo.get(uow.conn, signal.tenant_id, signal.subject or "")
        return repo.meter_unit(uow.conn, subscription.catalog, meter) if subscription is not None else meter

    return _UNITS.get(uow.conn, (signal.subject or "", meter), load)


_UNITS: ImmutableRowCache[str] = ImmutableRowCache()


@signals.on("usage.session_limit_changed")
def on_session_limit_changed(uow: UnitOfWork, signal: Signal) -> None:
    """A6: a new limit re-arms the 80%/100% alerts: their key holds the limit, so nothing to clear here."""


# --- occurrences: S5, S6 ----------------------------------------------------------------
@signals.on("usage.cap_exceeded")
def on_cap_exceeded(uow: UnitOfWork, signal: Signal) -> None:
    data = signal.data
    key = f"cap_exceeded:{signal.subject}:{data.get('meter')}"
    raise_alert(
        uow,
        tenant_id=signal.tenant_id,
        at=signal.at,
        alert=Alert(
            AlertKind.CAP_EXCEEDED,
            key,
            {"meter": data.get("meter"), "limit": data["limit"], "count": data["count"], "policy": data.get("policy")},
            None,
            signal.subject,
        ),
    )


@signals.on("occurrence.ending_soon")
def on_ending_soon(uow: UnitOfWork, signal: Signal) -> None:
    deadline = _at(signal.data["deadline"])
    assert deadline is not None
    key = f"occurrence_ending_soon:{signal.subject}:{deadline.isoformat()}"
    raise_alert(
        uow,
        tenant_id=signal.tenant_id,
        at=signal.at,
        alert=Alert(
            AlertKind.OCCURRENCE_ENDING_SOON,
            key,
            {"deadline": deadline, "minutes_left": signal.data["minutes_left"]},
            None,
            signal.subject,
        ),
    )


# --- trials: A3 ------------------------------------------------------------------------
@signals.on("subscription.trial_started")
def on_trial_started(uow: UnitOfWork, signal: Signal) -> None:
    plan = _plan_of(uow, signal.tenant_id, signal.subject)
    ends_at = _at(signal.data.get("trial_ends_at"))
    if plan is None or plan.trial is None or ends_at is None or signal.subject is None:
        return
    for days, due_at in days_left_due_times(
        trial_ends_at=ends_at, days_left=plan.trial.days_left_alerts, now=signal.at
    ):
        due.schedule(
            uow,
            tenant_id=signal.tenant_id,
            kind=TRIAL_DAYS_LEFT,
            ref=signal.subject,
            due_at=due_at,
            now=signal.at,
            payload={"days": days, "trial_ends_at": ends_at.isoformat()},
        )


@due.handler(TRIAL_DAYS_LEFT)
def _trial_days_left(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> str:
    subscription = subscriptions_repo.get(uow.conn, item["tenant_id"], item["ref"])
    days, ends_at = item["payload"]["days"], item["payload"]["trial_ends_at"]
    if subscription is None or subscription.status is not Status.TRIALING or subscription.trial_ends_at is None:
        return "nothing to do: not trialing"
    if subscription.trial_ends_at.isoformat() != ends_at:
        return "nothing to do: the trial's end moved"
    alert = Alert(
        AlertKind.TRIAL_DAYS_LEFT,
        f"trial_days_left:{subscription.id}:{days}",
        {"days": days, "trial_ends_at": subscription.trial_ends_at},
        subscription.id,
    )
    raised = raise_alert(uow, tenant_id=subscription.tenant_id, alert=alert, at=now, tone=_tone(subscription.plan))
    return f"alert {days} days left: {'raised' if raised else 'already raised'}"


@signals.on("subscription.trial_ended")
def on_trial_ended(uow: UnitOfWork, signal: Signal) -> None:
    plan = _plan_of(uow, signal.tenant_id, signal.subject)
    _raise(
        uow,
        signal,
        AlertKind.TRIAL_ENDED,
        f"trial_ended:{signal.subject}",
        {
            "cause": signal.data.get("cause"),
            "to_status": signal.data.get("to_status"),
            "plan": plan.name if plan else None,
        },
    )
    if signal.subject:
        due.cancel(uow, tenant_id=signal.tenant_id, kind=TRIAL_DAYS_LEFT, ref=signal.subject, now=signal.at)


# --- payment trouble: G9 ------------------------------------------------------------------
@signals.on("subscription.payment_issue")
def on_payment_issue(uow: UnitOfWork, signal: Signal) -> None:
    grace_ends_at = _at(signal.data.get("grace_ends_at"))
    _raise(uow, signal, AlertKind.PAYMENT_FAILED, f"payment_failed:{signal.subject}:{signal.data.get('invoice_id')}",
           {"grace_ends_at": grace_ends_at, "invoice_id": signal.data.get("invoice_id")})
    if grace_ends_at is not None and signal.subject is not None:
        reminder_at = grace_ending_due_at(grace_ends_at=grace_ends_at, now=signal.at)
        if reminder_at is not None:
            due.schedule(
                uow,
                tenant_id=signal.tenant_id,
                kind=GRACE_ENDING,
                ref=signal.subject,
                due_at=reminder_at,
                now=signal.at,
                payload={"grace_ends_at": grace_ends_at.isoformat()},
            )


@due.handler(GRACE_ENDING)
def _grace_ending(uow: UnitOfWork, item: dict[str, Any], now: datetime) -> str:
    subscription = subscriptions_repo.get(uow.conn, item["tenant_id"], item["ref"])
    if subscription is None or subscription.status is not Status.PAYMENT_ISSUE:
        return "nothing to do: no payment issue"
    grace_ends_at = item["payload"]["grace_ends_at"]
    alert = Alert(
        AlertKind.GRACE_ENDING,
        f"grace_ending:{subscription.id}:{grace_ends_at}",
        {"grace_ends_at": grace_ends_at},
        subscription.id,
    )
    raised = raise_alert(uow, tenant_id=subscription.tenant_id, alert=alert, at=now, tone=_tone(subscription.plan))
    return f"alert grace ending: {'raised' if raised else 'already raised'}"


@signals.on("subscription.grace_expired")
def on_grace_expired(uow: UnitOfWork, signal: Signal) -> None:
    subscription = subscriptions_repo.get(uow.conn, signal.tenant_id, signal.subject or "")
    episode = (
        subscription.grace_ends_at.isoformat()
        if subscription and subscription.grace_ends_at
        else signal.at.date().isoformat()
    )
    _raise(uow, signal, AlertKind.GRACE_EXPIRED, f"grace_expired:{signal.subject}:{episode}")


@signals.on("subscription.payment_settled")
def on_payment_settled(uow: UnitOfWork, signal: Signal) -> None:
    _raise(uow, signal, AlertKind.PAYMENT_SETTLED, f"payment_settled:{signal.subject}:{signal.data.get('invoice_id')}")
    if signal.subject:
        due.cancel(uow, tenant_id=signal.tenant_id, kind=GRACE_ENDING, ref=signal.subject, now=signal.at)


# --- cancellation: G8 -------------------------------------------------------------------
@signals.on("subscription.cancellation_scheduled")
def on_cancellation_scheduled(uow: UnitOfWork, signal: Signal) -> None:
    effective_at = _at(signal.data.get("effective_at"))
    _raise(
        uow,
        signal,
        AlertKind.CANCELLATION_SCHEDULED,
        f"cancellation_scheduled:{signal.subject}:{signal.at.isoformat()}",
        {"effective_at": effective_at},
    )


@signals.on("subscription.reactivated")
def on_reactivated(uow: UnitOfWork, signal: Signal) -> None:
    _raise(
        uow, signal, AlertKind.CANCELLATION_REVOKED, f"cancellation_revoked:{signal.subject}:{signal.at.isoformat()}"
    )


@signals.on("subscription.canceled")
def on_canceled(uow: UnitOfWork, signal: Signal) -> None:
    _raise(uow, signal, AlertKind.CANCELED, f"canceled:{signal.subject}", {"to": signal.data.get("to")})


# --- plan changes: G7 ------------------------------------------------------------------
@signals.on("subscription.plan_change_scheduled")
def on_plan_change_scheduled(uow: UnitOfWork, signal: Signal) -> None:
    plan = repo.plan_name(uow.conn, signal.data.get("to_plan_version_id")) or "your new plan"
    _raise(
        uow,
        signal,
        AlertKind.PLAN_CHANGE_SCHEDULED,
        f"plan_change_scheduled:{signal.subject}",
        {"plan": plan, "starts_at": _at(signal.data.get("starts_at"))},
        subscription_id=signal.data.get("current_subscription_id"),
    )


@signals.on("subscription.plan_change_canceled")
def on_plan_change_canceled(uow: UnitOfWork, signal: Signal) -> None:
    _raise(
        uow,
        signal,
        AlertKind.PLAN_CHANGE_CANCELED,
        f"plan_change_canceled:{signal.subject}",
        {"starts_at": _at(signal.data.get("starts_at"))},
    )


@signals.on("subscription.plan_changed")
def on_plan_changed(uow: UnitOfWork, signal: Signal) -> None:
    plan = repo.plan_name(uow.conn, signal.data.get("to_plan_version_id")) or "your new plan"
    starts_at = _at(signal.data.get("new_period_start")) or signal.at
    _raise(
        uow,
        signal,
        AlertKind.PLAN_CHANGED,
        f"plan_changed:{signal.subject}",
        {
            "plan": plan,
            "starts_at": starts_at,
            "upgrade": bool(signal.data.get("upgrade")),
            "immediate": bool(signal.data.get("immediate")),
        },
    )


# --- invoices: G13 ------------------------------------------------------------------------
@signals.on("invoice.issued")
def on_invoice_issued(uow: UnitOfWork, signal: Signal) -> None:
    _raise(uow, signal, *_invoice_issued(signal), subscription_id=signal.data.get("subscription_id"))


@signals.batch_form_of(on_invoice_issued)
def on_invoices_issued(uow: UnitOfWork, batch: Sequence[Signal]) -> None:
    """The billing run's thousands of `invoice.issued` at once (same alerts, few statements)."""
    plans = _plans_of(uow, [(signal.tenant_id, signal.data.get("subscription_id")) for signal in batch])
    raised = []
    for signal in batch:
        kind, key, params = _invoice_issued(signal)
        sub_id = signal.data.get("subscription_id")
        raised.append(
            Raised(
                signal.tenant_id,
                Alert(kind, key, params, sub_id, signal.subject),
                signal.at,
                _tone(plans[(signal.tenant_id, sub_id)]),
            )
        )
    raise_alerts(uow, raised)


def _invoice_issued(signal: Signal) -> tuple[AlertKind, str, dict[str, Any]]:
    data = signal.data
    total = Money(int(data["total_minor"]), str(data["currency"]))
    params = {
        "number": data["number"],
        "total": total.format(),
        "total_minor": total.amount_minor,
        "currency": total.currency,
        "invoice_kind": data.get("kind"),
    }
    return AlertKind.INVOICE_ISSUED, f"invoice_issued:{signal.subject}", params
