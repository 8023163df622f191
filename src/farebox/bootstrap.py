"""The composition root: the one place that wires adapters to services.

`bootstrap()` reads the settings once and chooses every adapter: the storage engine, the clock, the payment
provider (sandbox or Stripe), the usage source invoicing bills overage from (metering), the invoice numbering, the
mailer every e-mail goes through (alerts, invoices).  A `Farebox` built directly (tests, scenarios) gets the embedded
defaults; a test replaces any of them with a fake by passing it in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from farebox.clocks.system import SystemClock
from farebox.kernel.clock import Clock
from farebox.mail import Mailer, mailer_for
from farebox.payments.providers.base import PaymentProvider
from farebox.payments.providers.sandbox import SandboxProvider
from farebox.ports import InvoiceNumbering, Ports, UsageSource
from farebox.settings import Settings
from farebox.storage.engine import make_engine
from farebox.storage.uow import UnitOfWork


@dataclass
class Farebox:
    """What every service function receives: storage, the real clock, settings, and the ports' adapters."""

    engine: Engine
    clock: Clock
    settings: Settings = field(default_factory=Settings)
    send_sign_in_link: Callable[[str, str], None] = field(default=lambda email, link: print_sign_in_link(email, link))
    payment_provider: PaymentProvider = field(default_factory=SandboxProvider)
    usage_source: UsageSource | None = None  # None: metering's billable usage
    invoice_numbering: InvoiceNumbering = field(default_factory=InvoiceNumbering)
    mailer: Mailer | None = None  # every e-mail (alerts, invoices); None: FAREBOX_SMTP_URL's, if set (one SMTP sender)

    def __post_init__(self) -> None:
        from farebox.events import signals
        from farebox.metering.services import usage

        if self.usage_source is None:
            self.usage_source = usage.billable_usage
        if self.mailer is None:
            self.mailer = mailer_for(self.settings.smtp_url)
        signals.load_all()  # listeners and due-item handlers of every area

    @property
    def ports(self) -> Ports:
        return self  # type: ignore[return-value]  # the optional fields are set in __post_init__

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, readonly=readonly, ports=self.ports)


def print_sign_in_link(email: str, link: str) -> None:
    """The embedded default: portal sign-in links are printed to the server's console."""
    print(f"[farebox] sign-in link for {email}: {link}", file=sys.stderr, flush=True)


def sign_in_sender(settings: Settings) -> Callable[[str, str], None]:
    """Sign-in links go by e-mail when FAREBOX_SMTP_URL is set (and never to the log); the console print is the
    embedded default only."""
    smtp_url = settings.smtp_url
    if smtp_url is None:
        return print_sign_in_link
    from farebox.tenants.services.sign_in import mail_sign_in_link

    return lambda email, link: mail_sign_in_link(smtp_url, email, link)


def payment_provider(settings: Settings) -> PaymentProvider:
    """FAREBOX_PAYMENT_PROVIDER: `sandbox` (the default: no money moves) or `stripe`."""
    if settings.payment_provider == "stripe":
        from farebox.payments.providers.stripe import StripeProvider

        return StripeProvider.from_env()
    if settings.payment_provider != "sandbox":
        raise ValueError(f"FAREBOX_PAYMENT_PROVIDER is sandbox or stripe, not {settings.payment_provider!r}")
    return SandboxProvider()


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None, engine: Engine | None = None) -> Farebox:
    settings = settings or Settings.from_env()
    return Farebox(
        engine=engine or make_engine(settings.database_url, pool_settings=settings.pool),
        clock=clock or SystemClock(),
        settings=settings,
        send_sign_in_link=sign_in_sender(settings),
        payment_provider=payment_provider(settings),
        invoice_numbering=InvoiceNumbering(issuer=settings.invoice_issuer, pattern=settings.invoice_number_pattern),
    )
