"""What the Billing tab shows, gathered from the services into one plain object.

Only presentation lives here (the chart, the wording of plan limits); every
figure, warning and message comes from a service function or the domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from farebox.alerts.services import notifications
from farebox.bootstrap import Farebox
from farebox.catalog import service as catalog
from farebox.catalog.domain import Sales
from farebox.clocks import service as clocks
from farebox.entrypoints.portal import charts
from farebox.invoicing.services import credits, invoices
from farebox.kernel.access import Principal
from farebox.metering.services import usage
from farebox.metering.services.usage import TopUsage, UsageSummary
from farebox.payments import service as payments
from farebox.subscriptions.domain import cards as cards_domain
from farebox.subscriptions.domain.states import Status, Subscription, admission_refusal
from farebox.subscriptions.services import subscriptions
from farebox.tenants.services import tenants

SALES_LABEL = {Sales.CONTACT_SALES: "Contact sales", Sales.BOOK_A_DEMO: "Book a demo"}


@dataclass(frozen=True)
class PlanOffer:
    code: str
    name: str
    price: str
    interval: str
    description: str
    limits: list[str]
    sales_label: str | None  # "Contact sales" / "Book a demo" (S1, A5); None: self-serve
    is_current: bool
    tier: int


@dataclass(frozen=True)
class LimitCard:
    """A6: the tenant's own monthly session limit on a paid plan."""

    meter: str
    unit: str
    used: int
    base: int | None
    session_limit: int | None
    limit: int | None
    percent: int | None
    warning: str | None  # "Session limit almost reached" at 80%, "Session limit has been reached" at 100%


@dataclass
class BillingPage:
    tenant: dict[str, Any]
    now: datetime
    card: cards_domain.SubscriptionCard | None
    upcoming: cards_domain.UpcomingCard | None
    answered_only: bool
    refusal_message: str | None  # G9 / G10, exactly as admissions answer
    usage: UsageSummary
    limit_card: LimitCard | None
    gauges: list[dict[str, Any]]
    chart_svg: str | None
    top: list[TopUsage]
    plans: list[PlanOffer]
    notifications: notifications.NotificationList
    invoices: list[Any] = field(default_factory=list)  # invoices and credit notes, newest first
    credit_balance: Any = None  # services.credits.CreditBalance
    payment_methods: list[Any] = field(default_factory=list)


def refusal_message(current: Subscription | None, now: datetime) -> str | None:
    """G9 once grace has run out, G10 once the trial or plan has ended: what an admission answers now."""
    refusal = admission_refusal(current, now)
    return refusal.message() if refusal is not None else None


def limit_card(summary: UsageSummary, card: cards_domain.SubscriptionCard | None) -> LimitCard | None:
    """The *Session limit* card: paid plans that let the tenant set a limit, never during a trial (A6)."""
    if card is None or card.status in ("trialing", "expired", "canceled"):
        return None
    for m in summary.meters:
        if m.customer_limit_allowed:
            warning = m.warnings[0] if m.warnings else None
            return LimitCard(m.meter, m.unit, m.used, m.included, m.session_limit, m.limit, m.percent, warning)
    return None


def gauges(summary: UsageSummary) -> list[dict[str, Any]]:
    """L6: one gauge per period pool of attendee credits."""
    out = []
    for m in summary.meters:
        if m.kind == "attendees" and m.scope == "period":
            out.append(
                {"meter": m.meter, "unit": m.unit, "used": m.used, "of": m.limit, **charts.gauge(m.used, m.limit)}
            )
    return out


def chart(fb: Farebox, actor: Principal, tenant_id: str, summary: UsageSummary, now: datetime) -> str | None:
    if summary.period_start is None:
        return None
    counts: dict[date, int] = {}
    for d in usage.daily_usage(fb, actor, tenant_id):
        counts[d.day] = counts.get(d.day, 0) + d.units
    unit = next((m.unit for m in summary.meters if m.scope == "period"), None) or next(
        (m.unit for m in summary.meters), "unit"
    )
    first = summary.period_start.date()
    end = (summary.period_end or now).date() - timedelta(days=1)  # periods are half-open
    last = end if (end - first).days < charts.MAX_DAYS else min(now.date(), end)
    bars = charts.days_to_show(first, last, counts)
    return charts.daily_chart(bars, unit=unit, title=f"{unit.capitalize()}s counted per day this period")


def plan_offers(fb: Farebox, catalog_name: str | None, current_plan: str | None) -> list[PlanOffer]:
    if catalog_name is None:
        return []
    offers = []
    for plan in catalog.offered_plans(fb, catalog_name):
        limits = [
            f"{lim.meter}: {'unlimited' if lim.included is None else f'{lim.included:,}'}"
            + (f", then {lim.overage_unit_price.format()} each" if lim.overage_unit_price is not None else "")
            for lim in plan.limits
        ]
        offers.append(PlanOffer(
            plan.code, plan.name, plan.price.format(), plan.interval.value, plan.description, limits,
            SALES_LABEL.get(plan.sales), plan.code == current_plan, plan.tier,
        ))
    return offers


def default_catalog(fb: Farebox) -> str | None:
    """A tenant without any subscription is offered the first catalog's plans."""
    names = [c["name"] for c in catalog.list_catalogs(fb)]
    return names[0] if names else None


def build(fb: Farebox, actor: Principal, tenant_id: str) -> BillingPage:
    tenant = tenants.get_tenant(fb, actor, tenant_id)
    found = subscriptions.cards(fb, actor, tenant_id)
    current = subscriptions.current(fb, actor, tenant_id)
    now = clocks.tenant_now(fb, actor, tenant_id)
    summary = usage.usage_summary(fb, actor, tenant_id)
    catalog_name = current.catalog if current is not None else default_catalog(fb)
    page = BillingPage(
        tenant=tenant, now=now, card=found.subscription, upcoming=found.upcoming,
        answered_only=bool(current and current.plan.answered_only),
        refusal_message=refusal_message(current, now),
        usage=summary,
        limit_card=limit_card(summary, found.subscription),
        gauges=gauges(summary),
        chart_svg=chart(fb, actor, tenant_id, summary, now),
        top=usage.top_usage(fb, actor, tenant_id, limit=10),
        plans=plan_offers(
            fb,
            catalog_name,
            current.plan.code
            if current is not None and current.is_live and current.status is not Status.TRIALING
            else None,
        ),
        notifications=notifications.list_notifications(fb, actor, tenant_id, limit=20),
        invoices=invoices.list_invoices(fb, actor, tenant_id, limit=24, document=None),
        credit_balance=credits.credit_balance(fb, actor, tenant_id, limit=0),
        payment_methods=payments.list_payment_methods(fb, actor, tenant_id),
    )
    return page
