"""Issue 14 #5 (audit #5): an immediate downgrade's credit is a credit note on the customer's credit
balance, set against the next invoices before charging, or refunded by the operator through the
payment provider after the commit.  Issue 14 #7 (audit #7): test clocks never touch the legal numbering.

Everything goes through the services (`change_plan`, the due work that renews, `refund_credit`), on
each engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from farebox.clocks import service as clocks
from farebox.events import due
from farebox.invoicing.db import credits as credits_repo
from farebox.invoicing.domain.charges import Charge, InvoiceKind, LineKind
from farebox.invoicing.services import credits, invoices
from farebox.invoicing.services import issuing as invoicing
from farebox.kernel.access import SYSTEM, Role
from farebox.kernel.money import Money
from farebox.kernel.periods import Period
from farebox.kernel.reasons import DomainError
from farebox.payments import db as payments_repo
from farebox.payments import service as payments
from farebox.payments.providers.base import RefundResult
from farebox.payments.providers.sandbox import SandboxProvider
from farebox.storage.tables.invoicing import credit_refunds, invoice_sequences
from farebox.subscriptions.services import subscriptions as subs

from factories import make_tenant, principal
from invoicing_support import recording


class RecordingProvider(SandboxProvider):
    """The sandbox, remembering every charge and refund; `on_refund` runs inside the refund call."""

    def __init__(self) -> None:
        self.charges: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self.on_refund: Any = None
        self.refund_answer: Any = None

    def charge(self, **kw: Any) -> Any:
        self.charges.append(kw)
        return super().charge(**kw)

    def refund(self, *, charge_ref: str, amount: Money, idempotency_key: str) -> RefundResult:
        self.refunds.append({"charge_ref": charge_ref, "amount": amount, "idempotency_key": idempotency_key})
        if self.on_refund is not None:
            self.on_refund()
        if self.refund_answer is not None:
            answer = self.refund_answer
            if isinstance(answer, Exception):
                raise answer
            return answer
        return super().refund(charge_ref=charge_ref, amount=amount, idempotency_key=idempotency_key)


@pytest.fixture
def provider(fb):
    recorder = RecordingProvider()
    fb.payment_provider = recorder
    fb.usage_source = lambda conn, t, s, a, b: {}
    return recorder


def _downgrade_at_half(fb, clock, *, tenant_id: str = "acme") -> subs.Subscription:
    """Pro Plus (59.00) from the start, then Pro (29.00) immediately at exactly half the period: -15.00."""
    make_tenant(fb, tenant_id=tenant_id, catalog="session-caps", plan="pro_plus")
    sub = subs.current(fb, SYSTEM, tenant_id)
    clock.set(sub.period.start + (sub.period.end - sub.period.start) / 2)
    subs.change_plan(fb, SYSTEM, tenant_id, plan="pro", when="immediately")
    return sub


def _balance(fb, tenant_id: str = "acme") -> str:
    return credits.credit_balance(fb, SYSTEM, tenant_id).of("USD").format()


def test_audit5_G7_immediate_downgrade_is_a_credit_note_in_its_own_series_not_a_paid_negative_invoice(
    fb, clock, provider
):
    with recording("credit_note.issued", "invoice.issued") as seen:
        _downgrade_at_half(fb, clock)
    (first,) = invoices.list_invoices(fb, SYSTEM, "acme")  # invoices only: the credit note is not one
    assert (first.number, first.total.format(), first.status) == ("FB-2026-000001", "59.00 USD", "paid")
    (note,) = invoices.list_invoices(fb, SYSTEM, "acme", document="credit_note")
    assert (note.document, note.number, note.status, note.total.format(), note.kind) == (
        "credit_note",
        "FB-CN-2026-000001",
        "issued",
        "-15.00 USD",
        "proration",
    )
    assert note.paid_at is None and note.amount_due == Money(0, "USD")
    assert [line.kind for line in note.lines] == ["proration_credit", "proration_charge"]
    assert [s.kind for s in seen] == ["invoice.issued", "credit_note.issued"]  # the first invoice, then the note
    balance = credits.credit_balance(fb, SYSTEM, "acme")
    assert balance.balances == (Money(1500, "USD"),)
    (entry,) = balance.entries
    assert (entry.kind, entry.amount, entry.document_id) == ("credit_note", Money(1500, "USD"), note.id)
    assert "FB-CN-2026-000001" in entry.cause and "plan_changed" in entry.cause  # G3: its cause
    assert credits.verify(fb, SYSTEM, "acme") == []
    assert len(provider.charges) == 1  # the first invoice only: nothing is charged or "paid" for a credit


def test_audit5_the_renewal_takes_the_credit_before_charging_and_the_provider_charges_the_amount_due(
    fb, clock, provider
):
    sub = _downgrade_at_half(fb, clock)
    clock.set(sub.period.end)
    due.run_due(fb)  # the period rolls: the renewal is issued, the credit applied, the rest charged
    renewal = invoices.list_invoices(fb, SYSTEM, "acme")[0]
    assert renewal.kind == "renewal"
    assert (renewal.total.format(), renewal.credit_applied.format(), renewal.amount_due.format(), renewal.status) == (
        "29.00 USD", "15.00 USD", "14.00 USD", "paid")
    assert provider.charges[-1]["amount"] == Money(1400, "USD")
    with fb.uow(readonly=True) as uow:
        (attempt,) = payments_repo.attempts(uow.conn, "acme", renewal.id)
    assert (attempt["amount_minor"], attempt["status"]) == (1400, "succeeded")
    assert _balance(fb) == "0.00 USD"
    kinds = [
        (e.kind, e.amount.amount_minor, e.document_id)
        for e in reversed(credits.credit_balance(fb, SYSTEM, "acme").entries)
    ]
    assert kinds[1] == ("applied", -1500, renewal.id)
    assert credits.verify(fb, SYSTEM, "acme") == []


def test_audit5_an_invoice_the_balance_covers_is_paid_without_calling_the_provider(fb, clock, provider):
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro_plus")
    sub = subs.current(fb, SYSTEM, "acme")
    clock.set(sub.period.start + timedelta(hours=1))
    subs.change_plan(fb, SYSTEM, "acme", plan="pro", when="immediately")  # almost a whole period back: 29.96
    credit = credits.credit_balance(fb, SYSTEM, "acme").of("USD")
    assert credit.amount_minor > 2900
    charges_before = len(provider.charges)
    with recording("invoice.paid") as paid:
        clock.set(sub.period.end)
        due.run_due(fb)
    renewal = invoices.list_invoices(fb, SYSTEM, "acme")[0]
    assert (renewal.status, renewal.credit_applied.format(), renewal.amount_due.format()) == (
        "paid",
        "29.00 USD",
        "0.00 USD",
    )
    assert renewal.paid_at == sub.period.end
    assert len(provider.charges) == charges_before  # no provider call
    assert [s.subject for s in paid] == [renewal.id]
    assert credits.credit_balance(fb, SYSTEM, "acme").of("USD") == credit - Money(2900, "USD")


def test_audit5_a_batch_of_invoices_uses_one_balance_in_order(fb, clock, provider):
    """The billing run's `issue_all`: two invoices of one tenant in one batch share its 15.00."""
    sub = _downgrade_at_half(fb, clock)
    now = clock.now()

    def draft(n: int) -> invoicing.Draft:
        line = Charge(
            f"test:{n}",
            LineKind.FEE,
            f"fee {n}",
            sub.id,
            sub.plan_version_id,
            1,
            1000,
            1000,
            "USD",
            sub.period.start,
            sub.period.end,
            sub.period.start,
            sub.period.end,
        )
        return invoicing.Draft(
            "acme",
            sub.id,
            InvoiceKind.RENEWAL,
            f"test-batch-{n}",
            Period(sub.period.start, sub.period.end, 0),
            (line,),
            now,
            "test",
        )

    with fb.uow() as uow:
        issued = invoicing.issue_all(uow, [draft(1), draft(2)], collect=False)
        uow.commit()
    assert [(i.credit_applied_minor, i.amount_due_minor, i.status) for i in issued] == [
        (1000, 0, "paid"),
        (500, 500, "open"),
    ]
    assert _balance(fb) == "0.00 USD"
    assert credits.verify(fb, SYSTEM, "acme") == []


def test_audit5_the_operator_refunds_the_balance_after_the_commit_with_a_key_from_stable_ids(fb, clock, provider):
    _downgrade_at_half(fb, clock)
    seen_during_call: list[Any] = []

    def look() -> None:  # another connection, while the provider is asked: the refund is committed already
        with fb.engine.connect() as conn:
            seen_during_call.append([(r.status, r.amount_minor) for r in conn.execute(select(credit_refunds))])
            seen_during_call.append(credits_repo.balances(conn, "acme"))

    provider.on_refund = look
    (refund,) = credits.refund_credit(fb, SYSTEM, "acme")
    assert seen_during_call == [[("pending", 1500)], {"USD": 0}]
    (call,) = provider.refunds
    first_charge_attempt = _attempts(fb)[0]
    assert call["charge_ref"] == first_charge_attempt["provider_ref"] and call["amount"] == Money(1500, "USD")
    assert call["idempotency_key"] == f"{first_charge_attempt['id']}:refund:{refund.id}"
    assert (refund.status, refund.amount.format(), refund.provider_ref) == (
        "succeeded",
        "15.00 USD",
        f"re_sandbox_{_digest(call['idempotency_key'])}",
    )
    assert _balance(fb) == "0.00 USD"
    assert [e.kind for e in credits.credit_balance(fb, SYSTEM, "acme").entries] == ["refund", "credit_note"]
    assert credits.verify(fb, SYSTEM, "acme") == []
    with pytest.raises(DomainError) as nothing:
        credits.refund_credit(fb, SYSTEM, "acme")
    assert nothing.value.code == "no_credit_balance"


def test_audit5_a_refund_the_provider_refuses_gives_the_credit_back(fb, clock, provider):
    _downgrade_at_half(fb, clock)
    provider.refund_answer = RefundResult("failed", None, "The charge was already refunded.")
    (refund,) = credits.refund_credit(fb, SYSTEM, "acme")
    assert (refund.status, refund.failure_message) == ("failed", "The charge was already refunded.")
    assert _balance(fb) == "15.00 USD"
    assert [e.kind for e in credits.credit_balance(fb, SYSTEM, "acme").entries] == [
        "refund_failed",
        "refund",
        "credit_note",
    ]
    assert credits.verify(fb, SYSTEM, "acme") == []


def test_audit5_an_unanswered_refund_stays_pending_and_is_sent_again_with_the_same_key(fb, clock, provider):
    _downgrade_at_half(fb, clock)
    provider.refund_answer = TimeoutError("read timed out")
    (pending,) = credits.refund_credit(fb, SYSTEM, "acme")
    assert pending.status == "pending" and _balance(fb) == "0.00 USD"  # taken: it may have been paid out
    provider.refund_answer = None
    (again,) = credits.refund_credit(fb, SYSTEM, "acme")
    assert (again.id, again.status) == (pending.id, "succeeded")
    assert [c["idempotency_key"] for c in provider.refunds][0] == provider.refunds[1]["idempotency_key"]
    assert len(credits.credit_balance(fb, SYSTEM, "acme").refunds) == 1


def test_audit5_refunds_are_the_operators_and_never_exceed_the_balance(fb, clock, provider):
    _downgrade_at_half(fb, clock)
    for role in (Role.OWNER, Role.ADMIN):
        with pytest.raises(DomainError) as refused:
            credits.refund_credit(fb, principal(tenant_id="acme", role=role), "acme")
        assert refused.value.code == "forbidden"
    assert (
        credits.credit_balance(fb, principal(tenant_id="acme", role=Role.OWNER), "acme").of("USD").format()
        == "15.00 USD"
    )
    with pytest.raises(DomainError) as member:
        credits.credit_balance(fb, principal(tenant_id="acme", role=Role.MEMBER), "acme")
    assert member.value.code == "forbidden"
    with pytest.raises(DomainError) as too_much:
        credits.refund_credit(fb, SYSTEM, "acme", amount_minor=1501)
    assert too_much.value.code == "credit_refund_too_large"
    (part,) = credits.refund_credit(fb, SYSTEM, "acme", amount_minor=500)
    assert part.amount.format() == "5.00 USD" and _balance(fb) == "10.00 USD"
    assert provider.refunds == [provider.refunds[0]] and not any(
        r.status == "pending" for r in credits.credit_balance(fb, SYSTEM, "acme").refunds
    )


def test_audit5_a_credit_with_no_card_payment_to_go_back_to_stays_on_the_balance(fb, clock, provider):
    _downgrade_at_half(fb, clock)
    provider.name = "stripe"  # the charges were the sandbox's: nothing of this provider to refund
    try:
        with pytest.raises(DomainError) as refused:
            credits.refund_credit(fb, SYSTEM, "acme")
    finally:
        provider.name = "sandbox"
    assert refused.value.code == "no_charge_to_refund"
    assert _balance(fb) == "15.00 USD" and provider.refunds == []


def test_audit7_a_test_clock_in_2030_numbers_in_its_own_series_and_the_legal_one_is_untouched(fb, clock, provider):
    test_clock = clocks.create(fb, SYSTEM, name="sim", start=clock.now())
    make_tenant(fb, tenant_id="sim", card="4242424242424242")
    clocks.attach(fb, SYSTEM, test_clock["id"], "sim")
    subs.subscribe(fb, SYSTEM, "sim", catalog="session-caps", plan="pro_plus", cause="test")
    clocks.advance(fb, SYSTEM, test_clock["id"], to=datetime(2030, 1, 20, tzinfo=timezone.utc))
    subs.change_plan(fb, SYSTEM, "sim", plan="pro", when="immediately")
    numbers = [i.number for i in reversed(invoices.list_invoices(fb, SYSTEM, "sim"))]
    assert numbers[0] == "TEST-FB-2026-000001" and numbers[-1] == "TEST-FB-2030-000001"
    assert all(n.startswith("TEST-FB-20") for n in numbers)
    (note,) = invoices.list_invoices(fb, SYSTEM, "sim", document="credit_note")
    assert note.number == "TEST-FB-CN-2030-000001"
    make_tenant(fb, tenant_id="acme", catalog="session-caps", plan="pro")  # a real tenant, real clock
    assert [i.number for i in invoices.list_invoices(fb, SYSTEM, "acme")] == ["FB-2026-000001"]
    with fb.engine.connect() as conn:
        series = {(r.scope, r.year) for r in conn.execute(select(invoice_sequences))}
    assert ("FB", 2030) not in series and ("FB", 2026) in series and ("TEST-FB", 2030) in series


def _attempts(fb) -> list[dict[str, Any]]:
    with fb.uow(readonly=True) as uow:
        rows = []
        for inv in reversed(invoices.list_invoices(fb, SYSTEM, "acme")):
            rows += payments_repo.attempts(uow.conn, "acme", inv.id)
        return rows


def _digest(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:24]


def test_audit5_a_voided_invoice_gives_back_the_credit_applied_to_it_once(fb, clock, provider):
    """The renewal takes the 15.00 and its 14.00 charge is declined; the operator voids it (`void_invoice`
    publishes `invoice.voided`): the 15.00 is back on the balance, once."""
    from farebox.payments.providers.sandbox import FAILS_LATER

    sub = _downgrade_at_half(fb, clock)
    payments.add_payment_method(fb, SYSTEM, "acme", token=FAILS_LATER)
    clock.set(sub.period.end)
    due.run_due(fb)
    renewal = invoices.list_invoices(fb, SYSTEM, "acme")[0]
    assert (renewal.status, renewal.credit_applied.format(), renewal.amount_due.format()) == (
        "open",
        "15.00 USD",
        "14.00 USD",
    )
    assert provider.charges[-1]["amount"] == Money(1400, "USD") and _balance(fb) == "0.00 USD"
    invoices.void_invoice(fb, SYSTEM, "acme", renewal.id, reason="issued by mistake")
    assert _balance(fb) == "15.00 USD"
    with pytest.raises(DomainError):
        # voided already: nothing more comes back
        invoices.void_invoice(fb, SYSTEM, "acme", renewal.id, reason="issued by mistake")
    assert _balance(fb) == "15.00 USD"
    assert [e.kind for e in credits.credit_balance(fb, SYSTEM, "acme").entries][0] == "released"
    assert credits.verify(fb, SYSTEM, "acme") == []


def test_audit5_a_process_killed_while_the_provider_refunds_is_resumed_with_the_same_key(fb, clock, provider):
    """The refund committed, the provider asked, then the process dies before the answer is recorded: the
    next `refund_credit` sends the same refund again with the same key, and it is recorded once."""
    _downgrade_at_half(fb, clock)

    def die() -> None:
        raise SystemExit("killed")

    provider.on_refund = die
    with pytest.raises(SystemExit):
        credits.refund_credit(fb, SYSTEM, "acme")
    (left,) = credits.credit_balance(fb, SYSTEM, "acme").refunds
    assert left.status == "pending" and _balance(fb) == "0.00 USD"
    provider.on_refund = None
    (done,) = credits.refund_credit(fb, SYSTEM, "acme")
    assert (done.id, done.status) == (left.id, "succeeded")
    assert (
        provider.refunds[0]["idempotency_key"]
        == provider.refunds[1]["idempotency_key"]
        == f"{left.payment_attempt_id}:refund:{left.id}"
    )
    assert [e.kind for e in credits.credit_balance(fb, SYSTEM, "acme").entries] == ["refund", "credit_note"]


def test_audit5_two_invoices_issued_at_once_never_spend_the_same_credit(fb, clock, provider):
    """The balance row is locked by the transaction that applies it: a second issuer waits, then sees what is left."""
    import threading

    sub = _downgrade_at_half(fb, clock)
    now = clock.now()
    line = Charge("test:fee", LineKind.FEE, "fee", sub.id, sub.plan_version_id, 1, 1000, 1000, "USD",
                  sub.period.start, sub.period.end, sub.period.start, sub.period.end)
    first_holds, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def issue(name: str, hold: bool) -> None:
        with fb.uow() as uow:
            results[name] = invoicing.issue(
                uow,
                tenant_id="acme",
                subscription_id=sub.id,
                kind=InvoiceKind.RENEWAL,
                billing_key=f"test-{name}",
                period=Period(sub.period.start, sub.period.end, 0),
                lines=[line],
                now=now,
                cause="test",
            )
            if hold:
                first_holds.set()
                release.wait(10)
            uow.commit()

    a = threading.Thread(target=issue, args=("a", True))
    a.start()
    assert first_holds.wait(10)
    b = threading.Thread(target=issue, args=("b", False))
    b.start()
    b.join(0.5)
    assert b.is_alive()  # waiting for the first transaction's lock
    release.set()
    a.join(10)
    b.join(10)
    applied = sorted(results[n].credit_applied_minor for n in ("a", "b"))
    assert applied == [500, 1000] and _balance(fb) == "0.00 USD"
    assert credits.verify(fb, SYSTEM, "acme") == []


def test_audit5_a_refund_is_audited_with_who_and_how_much(fb, clock, provider):
    from farebox.records.services import audit

    _downgrade_at_half(fb, clock)
    (refund,) = credits.refund_credit(fb, SYSTEM, "acme", amount_minor=600)
    (entry,) = audit.entries(fb, SYSTEM, tenant_id="acme", kind_prefix="credit.")
    assert (entry["kind"], entry["actor"], entry["subject"]) == ("credit.refund_requested", SYSTEM.label(), refund.id)
    assert (entry["data"]["amount_minor"], entry["data"]["currency"], entry["data"]["refunds"]) == (
        600,
        "USD",
        [refund.id],
    )


def test_audit5_the_preview_of_the_next_invoice_shows_the_credit_it_will_take(fb, clock, provider):
    _downgrade_at_half(fb, clock)
    draft = invoices.preview_next_invoice(fb, SYSTEM, "acme")
    assert (draft.total.format(), draft.credit_applied.format(), draft.amount_due.format()) == (
        "29.00 USD",
        "15.00 USD",
        "14.00 USD",
    )
