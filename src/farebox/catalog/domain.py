"""Catalogs, plans, meters and entitlements: what a plan sells and allows.

A catalog is declarative data (see docs/catalog.md); these frozen classes are
its validated, in-memory form.  Nothing here is specific to one product: the
three bundled catalogs (session-caps, attendee-credits, agent-sessions) are
all expressed with the same vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from farebox.kernel.money import Money
from farebox.kernel.periods import Interval

MONEY_COLUMN_MAX = 2**63 - 1
"""The largest amount a money column stores: a signed 64-bit integer of minor units
(SQLite INTEGER, PostgreSQL BIGINT)."""
MAX_PRICE_MINOR = MONEY_COLUMN_MAX // 10_000
"""The largest price or overage unit price a catalog may set: 922,337,203,685,477 minor
units (9,223,372,036,854.77 USD); ten thousand times it (tax, proration, many lines or
units on one invoice) still fits a money column."""


def price_problem(price: Money) -> str | None:
    """Why a catalog price cannot be sold, or None (never negative; storable in a money column)."""
    if price.amount_minor < 0:
        return "must not be negative"
    if price.amount_minor > MAX_PRICE_MINOR:
        top = Money(MAX_PRICE_MINOR, price.currency).to_decimal()
        return f"must be at most {top} {price.currency} (what a money column stores, with room for an invoice)"
    return None


class MeterKind(StrEnum):
    """What a meter counts."""

    ATTENDEES = "attendees"
    """Unique attendees per occurrence: one person counts once per occurrence
    whatever the mix of early, live, replay and on-demand (S4, L1, L2)."""
    CONCURRENT_ATTENDEES = "concurrent_attendees"
    """People in an occurrence's room at the same time (S5, Business)."""
    BILLABLE_SESSIONS = "billable_sessions"
    """24-hour windows of a conversation (A1), optionally answered-only (A2)."""


class Scope(StrEnum):
    """Where a meter's limit applies."""

    OCCURRENCE = "occurrence"
    """A cap per occurrence (S5): each occurrence starts from zero."""
    PERIOD = "period"
    """A pool per billing period shared by every event and team (L3, A6)."""


class Policy(StrEnum):
    """What happens at a limit."""

    SOFT = "soft"
    """Nobody is blocked; the host is told and must upgrade before starting
    future occurrences (S5)."""
    HARD = "hard"
    """New units are refused at the limit (L7, A6)."""
    HARD_WITH_WAITING_ROOM = "hard_with_waiting_room"
    """Refused at the limit but queued; admitted when someone leaves (S5)."""
    OVERAGE = "overage"
    """Usage goes beyond the limit and the excess is billed in arrears (L8, A8)."""


class Sales(StrEnum):
    """How a plan is bought."""

    SELF_SERVE = "self_serve"
    CONTACT_SALES = "contact_sales"  # S1 Business
    BOOK_A_DEMO = "book_a_demo"  # A5 Enterprise


class Billing(StrEnum):
    IN_ADVANCE = "in_advance"  # G13: recurring fees
    IN_ARREARS = "in_arrears"


class AlertTone(StrEnum):
    STANDARD = "standard"
    MILD = "mild"  # L8: Enterprise alerts are "less alarming"


@dataclass(frozen=True, slots=True)
class Meter:
    key: str
    kind: MeterKind
    scope: Scope
    unit: str
    window: timedelta | None = None  # billable sessions: 24 h (A1)


@dataclass(frozen=True, slots=True)
class Limit:
    """One entitlement of a plan: how much of a meter, and what happens at the limit."""

    meter: str
    included: int | None  # None: unlimited
    policy: Policy
    overage_unit_price: Money | None = None
    alert_thresholds: tuple[int, ...] = ()  # percent of `included`, e.g. (80, 100)
    customer_limit: bool = False  # A6: the tenant may set its own monthly limit
    carry_forward_on_upgrade: bool = False  # L4: remaining units move to the new plan

    @property
    def is_unlimited(self) -> bool:
        return self.included is None


@dataclass(frozen=True, slots=True)
class Trial:
    """A plan's free trial (A3): whichever bound runs out first ends it."""

    days: int
    usage: Mapping[str, int] = field(default_factory=dict)  # meter key -> units
    usage_alerts: tuple[int, ...] = ()  # percent of the usage bound (A3: 60, 90)
    days_left_alerts: tuple[int, ...] = ()  # days before the end (A3: 7, 2)
    ending_soon_days: int = 3  # G11: badge in the last 3 days ...
    ending_soon_usage_percent: int = 90  # ... or once 90% of trial usage is used


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    name: str
    price: Money  # per interval; zero for free plans
    interval: Interval
    tier: int  # order within the catalog: a higher tier is an upgrade
    billing: Billing = Billing.IN_ADVANCE
    sales: Sales = Sales.SELF_SERVE
    limits: tuple[Limit, ...] = ()
    trial: Trial | None = None
    event_duration: timedelta | None = None  # S6, L5
    duration_warning: timedelta = timedelta(minutes=10)  # S6
    seats: int | None = None  # billed host seats (S2); None: unlimited
    features: frozenset[str] = frozenset()  # e.g. cohosts, sso, premium
    grace_days: int = 7  # G9
    requires_payment_method: bool = True  # S1/L5: free plans need no card
    answered_only: bool = False  # A2
    alert_tone: AlertTone = AlertTone.STANDARD
    example_price: bool = False  # the seeds give no price: an example value
    description: str = ""

    @property
    def is_free(self) -> bool:
        return self.price.is_zero()

    def limit(self, meter: str) -> Limit | None:
        for limit in self.limits:
            if limit.meter == meter:
                return limit
        return None

    def has_feature(self, feature: str) -> bool:
        return feature in self.features


@dataclass(frozen=True, slots=True)
class Catalog:
    name: str
    title: str
    currency: str
    meters: Mapping[str, Meter]
    plans: Mapping[str, Plan]
    free_plan: str | None = None  # G8: where a cancelled tenant falls back; None -> Expired
    retention_days: int | None = None  # G14: event data kept this long after cancellation
    source: str = ""

    def plan(self, code: str) -> Plan:
        try:
            return self.plans[code]
        except KeyError:
            raise KeyError(f"plan {code!r} is not in catalog {self.name!r}") from None

    def meter(self, key: str) -> Meter:
        return self.meters[key]
