"""The worker's delivery pass: e-mails and signed webhooks out of the outbox, with retries.

Each alert's deliveries were written in the transaction that raised it
(`services.notify`).  This pass claims due ones on the real clock, leases
them (their next attempt moves `lease` ahead and is committed *before*
anything is sent), sends outside any transaction, then records the attempt.
A worker killed between claiming and recording leaves the delivery pending:
it is tried again when the lease runs out, so nothing is lost; a receiver
may see a message twice and deduplicates on its stable `webhook-id` (the
delivery id).  Failures back off exponentially; after `MAX_ATTEMPTS` a
delivery is `failed` until an operator replays it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from farebox import mail as email_adapter
from farebox.alerts import db as repo
from farebox.alerts import webhooks
from farebox.bootstrap import Farebox
from farebox.kernel import reasons
from farebox.kernel.access import Principal, require_billing_access, require_operator
from farebox.kernel.reasons import DomainError
from farebox.storage.ids import new_id

MAX_ATTEMPTS = 16  # the waits between them add up to about 38½ hours (`retry_span`)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
LEASE = timedelta(seconds=60)


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failure: 30 s, 1 min, 2 min, 4 min … capped at 6 h."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


def retry_span() -> timedelta:
    """How long a receiver may be down before its deliveries are `failed` (until replayed)."""
    return sum((backoff(n) for n in range(1, MAX_ATTEMPTS)), timedelta())


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str  # also the webhook's `webhook-id`
    tenant_id: str
    notification_id: str
    channel: str
    target: str
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    log: tuple[Attempt, ...] = ()

    @classmethod
    def of(cls, row: dict[str, Any], log: list[dict[str, Any]] | None = None) -> Delivery:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            notification_id=row["notification_id"],
            channel=row["channel"],
            target=row["target"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            delivered_at=row["delivered_at"],
            created_at=row["created_at"],
            log=tuple(Attempt(a["at"], a["ok"], a["status_code"], a["error"]) for a in log or ()),
        )


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)  # delivery id -> email | webhook

    @property
    def count(self) -> int:
        return len(self.delivered) + len(self.retrying) + len(self.failed)


@dataclass(frozen=True, slots=True)
class _Job:
    row: dict[str, Any]
    notification: dict[str, Any]
    tenant_name: str
    endpoint: dict[str, Any] | None


def webhook_body(notification: dict[str, Any]) -> str:
    """The JSON a webhook carries (Standard Webhooks' `type`, `timestamp`, `data`); the same bytes on every retry."""
    payload = {
        "type": f"alert.{notification['kind']}",
        "timestamp": notification["created_at"].isoformat(),
        "data": {
            "notification_id": notification["id"],
            "tenant_id": notification["tenant_id"],
            "kind": notification["kind"],
            "title": notification["title"],
            "body": notification["body"],
            "severity": notification["severity"],
            "subscription_id": notification["subscription_id"],
            "subject": notification["subject"],
            "params": notification["data"],
        },
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def deliver_pending(
    fb: Farebox,
    *,
    limit: int = 100,
    mailer: email_adapter.Mailer | None = None,
    transport: httpx.BaseTransport | None = None,
    lease: timedelta = LEASE,
    timeout: float = 10.0,
) -> DeliveryReport:
    """One delivery pass: every pending e-mail (when SMTP is configured) and webhook that is due."""
    mailer = mailer or fb.ports.mailer
    channels = ("webhook", "email") if mailer is not None else ("webhook",)
    report = DeliveryReport()
    while report.count < limit:
        jobs = _claim(fb, channels=channels, limit=min(20, limit - report.count), lease=lease)
        if not jobs:
            break
        for job in jobs:
            ok, status_code, error = _send(fb, job, mailer=mailer, transport=transport, timeout=timeout)
            outcome = _record(fb, job, ok=ok, status_code=status_code, error=error)
            getattr(report, outcome).append(job.row["id"])
            report.channels[job.row["id"]] = job.row["channel"]
    return report


def backlog(fb: Farebox) -> dict[tuple[str, str], int]:
    """Deliveries not delivered, by (channel, status): `pending` is the outbox backlog, `failed` waits for a replay."""
    with fb.uow(readonly=True) as uow:
        return repo.count_undelivered(uow.conn)


def _claim(fb: Farebox, *, channels: tuple[str, ...], limit: int, lease: timedelta) -> list[_Job]:
    with fb.uow() as uow:
        now = fb.clock.now()
        jobs = []
        for row in repo.claim_due(uow.conn, now=now, channels=channels, limit=limit):
            repo.update_delivery(
                uow.conn, row["tenant_id"], row["id"], next_attempt_at=now + lease, attempts=row["attempts"] + 1
            )
            row = {**row, "attempts": row["attempts"] + 1}
            notification = repo.get_notification(uow.conn, row["tenant_id"], row["notification_id"])
            endpoint = repo.get_endpoint(uow.conn, row["target"]) if row["channel"] == "webhook" else None
            assert notification is not None
            jobs.append(_Job(row, notification, repo.tenant_name(uow.conn, row["tenant_id"]), endpoint))
        uow.commit()
    return jobs


def _send(
    fb: Farebox,
    job: _Job,
    *,
    mailer: email_adapter.Mailer | None,
    transport: httpx.BaseTransport | None,
    timeout: float,
) -> tuple[bool, int | None, str | None]:
    row, notification = job.row, job.notification
    if row["channel"] == "email":
        assert mailer is not None
        mail = email_adapter.render(
            to=row["target"],
            title=notification["title"],
            body=notification["body"],
            tenant_name=job.tenant_name,
            delivery_id=row["id"],
        )
        try:
            mailer.send(mail.message())
        except Exception as exc:  # any SMTP or network failure is retried
            return False, None, f"{type(exc).__name__}: {exc}"[:500]
        return True, None, None
    endpoint = job.endpoint
    if endpoint is None or not endpoint["enabled"]:
        return False, None, "webhook endpoint removed or disabled"
    now = fb.clock.now()
    in_force = [endpoint["secret"]]
    if (
        endpoint["previous_secret"]
        and endpoint["previous_secret_expires_at"]
        and endpoint["previous_secret_expires_at"] > now
    ):
        in_force.append(endpoint["previous_secret"])
    body = webhook_body(notification)
    result = webhooks.post(
        endpoint["url"],
        body=body,
        headers=webhooks.headers(in_force, msg_id=row["id"], timestamp=now, body=body),
        timeout=timeout,
        transport=transport,
    )
    return result.ok, result.status_code, result.error


def _record(fb: Farebox, job: _Job, *, ok: bool, status_code: int | None, error: str | None) -> str:
    row = job.row
    with fb.uow() as uow:
        now = fb.clock.now()
        repo.record_attempt(
            uow.conn,
            tenant_id=row["tenant_id"],
            id=new_id("att"),
            delivery_id=row["id"],
            at=now,
            ok=ok,
            status_code=status_code,
            error=error,
        )
        if ok:
            repo.update_delivery(
                uow.conn,
                row["tenant_id"],
                row["id"],
                status="delivered",
                delivered_at=now,
                last_error=None,
                next_attempt_at=None,
            )
            outcome = "delivered"
        elif row["attempts"] >= MAX_ATTEMPTS:
            repo.update_delivery(
                uow.conn, row["tenant_id"], row["id"], status="failed", last_error=error, next_attempt_at=None
            )
            outcome = "failed"
        else:
            repo.update_delivery(
                uow.conn, row["tenant_id"], row["id"], last_error=error, next_attempt_at=now + backoff(row["attempts"])
            )
            outcome = "retrying"
        uow.commit()
    return outcome


# --- the delivery log and replay ------------------------------------------------------------
def list_deliveries(
    fb: Farebox,
    actor: Principal,
    *,
    tenant_id: str | None = None,
    status: str | None = None,
    channel: str | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Deliveries, oldest first: the operator sees every tenant's; an owner or admin only their own."""
    if tenant_id is None:
        require_operator(actor)
    else:
        require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return [
            Delivery.of(r)
            for r in repo.list_deliveries(uow.conn, tenant_id=tenant_id, status=status, channel=channel, limit=limit)
        ]


def get_delivery(fb: Farebox, actor: Principal, delivery_id: str) -> Delivery:
    """One delivery with its log of attempts."""
    with fb.uow(readonly=True) as uow:
        row = repo.get_delivery(uow.conn, delivery_id, None if actor.is_operator else actor.tenant_id)
        if row is None:
            raise DomainError(reasons.NOT_FOUND, what="Delivery")
        require_billing_access(actor, row["tenant_id"])
        return Delivery.of(row, repo.attempts(uow.conn, row["tenant_id"], row["id"]))


def replay(fb: Farebox, actor: Principal, delivery_id: str) -> Delivery:
    """Send a delivery again (delivered or failed): same body, same `webhook-id`, back-off from the start."""
    require_operator(actor)
    with fb.uow() as uow:
        row = repo.get_delivery(uow.conn, delivery_id)
        if row is None:
            raise DomainError(reasons.NOT_FOUND, what="Delivery")
        repo.update_delivery(uow.conn, row["tenant_id"], row["id"], status="pending", attempts=0, next_attempt_at=None)
        uow.commit()
    return get_delivery(fb, actor, delivery_id)


@dataclass(frozen=True, slots=True)
class OutboxMail:
    delivery_id: str
    to: str
    subject: str
    text: str
    status: str
    created_at: datetime


def email_outbox(fb: Farebox, actor: Principal, tenant_id: str, *, limit: int = 100) -> list[OutboxMail]:
    """The tenant's e-mails as rendered (pending ones are the local outbox when no SMTP server is set)."""
    require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        name = repo.tenant_name(uow.conn, tenant_id)
        mails = []
        for row in repo.list_deliveries(uow.conn, tenant_id=tenant_id, channel="email", limit=limit):
            notification = repo.get_notification(uow.conn, tenant_id, row["notification_id"]) or {}
            mail = email_adapter.render(
                to=row["target"],
                title=notification["title"],
                body=notification["body"],
                tenant_name=name,
                delivery_id=row["id"],
            )
            mails.append(OutboxMail(row["id"], mail.to, mail.subject, mail.text, row["status"], row["created_at"]))
        return mails
