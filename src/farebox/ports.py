"""The ports services depend on: what they ask of storage and of the outside world.

Services are written against these interfaces; `bootstrap.py` is the one place that chooses an implementation
(SQLAlchemy repositories, the sandbox or Stripe, metering's usage, SMTP), and tests pass in-memory fakes
(`tests/fakes.py`) to check the rules without a database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from farebox.catalog.domain import Meter
from farebox.mail import Mailer
from farebox.payments.providers.base import PaymentProvider
from farebox.subscriptions.domain.states import Subscription

__all__ = [
    "InvoiceNumbering",
    "Mailer",
    "MeteringRepository",
    "PaymentProvider",
    "Ports",
    "SubscriptionRepository",
    "UsageSource",
]

# Units a subscription used per meter in the periods starting in [start, end): what invoicing bills as overage.
UsageSource = Callable[[Connection, str, str, datetime, datetime], Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class InvoiceNumbering:
    """G13: who issues invoices and how their numbers read.  The sequence restarts every year per issuer, so a
    pattern must hold `{year}` and `{seq}`, or two invoices could get one number."""

    issuer: str = "FB"
    pattern: str = "{issuer}-{year}-{seq:06d}"

    def __post_init__(self) -> None:
        if "{year" not in self.pattern or "{seq" not in self.pattern:
            raise ValueError(
                f"invoice number pattern {self.pattern!r} must contain {{year}} and {{seq}}: numbers restart every year"
            )


class Ports(Protocol):
    """What a unit of work reaches besides its connection (the `Farebox` container implements it)."""

    payment_provider: PaymentProvider
    usage_source: UsageSource
    invoice_numbering: InvoiceNumbering
    mailer: Mailer | None  # every e-mail goes through it (mail.py); None: no SMTP server set


class SubscriptionRepository(Protocol):
    """The subscriptions a service reads (`storage/repositories.py`; `tests/fakes.py`)."""

    def current(self, tenant_id: str) -> Subscription | None: ...

    def current_of_many(self, tenant_ids: list[str]) -> dict[str, Subscription]: ...

    def get(self, tenant_id: str, subscription_id: str) -> Subscription | None: ...


class MeteringRepository(Protocol):
    """Usage counters, meters and the tenant's metering settings, as the usage service reads them."""

    def meters_of(self, plan_version_id: int) -> dict[str, Meter]: ...

    def counters_for(self, tenant_id: str, subscription_id: str, period_start_at: datetime) -> list[dict[str, Any]]: ...

    def counters_of_many(self, periods: list[tuple[str, str, datetime]]) -> list[dict[str, Any]]: ...

    def counters_between(
        self, tenant_id: str, subscription_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]: ...

    def session_limit(self, tenant_id: str) -> int | None: ...

    def session_limits(self, tenant_ids: list[str]) -> dict[str, int | None]: ...

    def fullest_occurrences(self, periods: list[tuple[str, str, datetime]]) -> dict[tuple[str, str], tuple[int, int]]:
        """Per (tenant, subscription): the most counted in one occurrence this period, the most present at once."""
        ...
