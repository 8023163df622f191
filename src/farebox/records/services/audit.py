"""The audit log: every change to a subscription, catalog, limit,
payment method, key, member or webhook endpoint, and every voided invoice, with who, when and what.

It is a listener on every signal (`farebox.events.signals`): a change and
its audit row commit in the same transaction, so neither exists without the
other.  Signals that are not changes someone made to configuration or to a
subscription (usage counted, invoices issued, alerts) are not audited here;
they have their own records.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from farebox.bootstrap import Farebox
from farebox.events import signals
from farebox.kernel.access import Principal, require_billing_access, require_operator
from farebox.records.db import audit as repo
from farebox.storage.ids import new_id
from farebox.storage.tables.audit import OPERATOR_SCOPE
from farebox.storage.uow import UnitOfWork

AUDITED_PREFIXES = (
    "subscription.",
    "catalog.",
    "api_key.",
    "member.",
    "tenant.",
    "webhook_endpoint.",
    "payment_method.",
    "clock.",
    "credit.",
)
AUDITED_KINDS = frozenset({"usage.session_limit_changed", "invoice.voided", "invoice.refunded"})


def is_audited(kind: str) -> bool:
    return kind in AUDITED_KINDS or kind.startswith(AUDITED_PREFIXES)


def _plain(value: Any) -> Any:
    """JSON-safe copy of a signal's data (datetimes as ISO text, enums as values)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@signals.on("*")
def record(uow: UnitOfWork, signal: signals.Signal) -> None:
    if not is_audited(signal.kind):
        return
    repo.append(
        uow.conn,
        tenant_id=signal.tenant_id or OPERATOR_SCOPE,
        id=new_id("aud"),
        at=signal.at,
        actor=signal.actor,
        kind=signal.kind,
        subject=signal.subject,
        data=_plain(dict(signal.data)),
    )


def entries(
    fb: Farebox, actor: Principal, *, tenant_id: str | None = None, limit: int = 100, kind_prefix: str | None = None
) -> list[dict[str, Any]]:
    """The operator reads every entry (or one tenant's); owners and admins read their own tenant's."""
    if tenant_id is None:
        require_operator(actor)
    else:
        require_billing_access(actor, tenant_id)
    with fb.uow(readonly=True) as uow:
        return repo.entries(uow.conn, tenant_id=tenant_id, limit=limit, kind_prefix=kind_prefix)


def publish(
    uow: UnitOfWork,
    kind: str,
    *,
    tenant_id: str | None,
    at: datetime,
    actor: Principal,
    subject: str | None = None,
    **data: Any,
) -> None:
    """Publish a change signal on behalf of `actor` (the operator-wide scope when `tenant_id` is None)."""
    signals.publish(uow, signals.Signal(kind, tenant_id or OPERATOR_SCOPE, at, actor.label(), subject, data))
