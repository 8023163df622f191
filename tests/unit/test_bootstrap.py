"""The composition root wires every adapter once (issue 15 item 9): the payment provider, the usage source, the
invoice numbering and the mailers come from `bootstrap`, not from module globals read from os.environ."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from farebox.bootstrap import bootstrap
from farebox.mail import SmtpMailer
from farebox.metering.services import usage
from farebox.payments.providers.sandbox import SandboxProvider
from farebox.payments.providers.stripe import StripeProvider
from farebox.settings import Settings

SERVICES = Path(__file__).resolve().parents[2] / "src" / "farebox" / "services"


def test_bootstrap_wires_the_provider_usage_source_numbering_and_mailers(monkeypatch):
    monkeypatch.setenv("FAREBOX_STRIPE_API_KEY", "sk_test_123")
    settings = Settings(
        database_url="sqlite://", payment_provider="stripe", invoice_issuer="ACME",
        invoice_number_pattern="{issuer}/{year}/{seq}", smtp_url="smtp://127.0.0.1:2525",
    )
    fb = bootstrap(settings)
    assert isinstance(fb.payment_provider, StripeProvider)
    assert fb.usage_source is usage.billable_usage
    assert (fb.invoice_numbering.issuer, fb.invoice_numbering.pattern) == ("ACME", "{issuer}/{year}/{seq}")
    assert isinstance(fb.mailer, SmtpMailer)  # audit #9: the one mailer, for alerts and invoice e-mails alike
    with fb.uow(readonly=True) as uow:
        assert uow.ports.payment_provider is fb.payment_provider and uow.ports.usage_source is usage.billable_usage
    embedded = bootstrap(Settings(database_url="sqlite://"))
    assert isinstance(embedded.payment_provider, SandboxProvider) and embedded.mailer is None
    with pytest.raises(ValueError, match="sandbox or stripe"):
        bootstrap(Settings(database_url="sqlite://", payment_provider="paypal"))


def test_no_service_reads_os_environ_or_hides_a_missing_module():
    """`except ModuleNotFoundError: return {}` would silently bill no overage; env-chosen globals bypass bootstrap."""
    for path in sorted(SERVICES.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "environ":
                raise AssertionError(f"{path.name}:{node.lineno} reads os.environ")
            if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Name):
                assert node.type.id not in ("ImportError", "ModuleNotFoundError"), f"{path.name}:{node.lineno}"
