"""Audit #9: one SMTP adapter sends every e-mail (alerts, invoices, sign-in links), tested against a real
SMTP server (aiosmtpd) without TLS, with STARTTLS and with implicit TLS; the password never travels in clear."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import quote

import pytest

from farebox.alerts.services import delivery
from farebox.events.signals import Signal, publish
from farebox.invoicing.services import invoices
from farebox.kernel.access import SYSTEM
from farebox.mail import SmtpMailer, SmtpSecurityError, mailer_for
from farebox.subscriptions.services import subscriptions
from farebox.tenants.db import tenants as tenants_repo
from smtp_support import smtp_server

from factories import clear_outbox, make_tenant, usage_recorded

PASSWORD = "p@ss:w/rd%"  # percent-encoded in the URL, decoded before AUTH


def _message(to: str = "books@acme.test") -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = "Invoice FB-2026-000001: 29.00 USD"
    message.set_content("Attached.")
    return message


def test_audit9_plain_server_without_starttls_delivers_with_sender_date_and_message_id(tmp_path):
    with smtp_server(tmp_path) as (inbox, port, _):
        SmtpMailer(f"smtp://127.0.0.1:{port}?from=billing%40example.com").send(_message())
    ((recipients, mail),) = inbox.messages
    assert recipients == ["books@acme.test"] and mail["From"] == "billing@example.com"
    assert mail["Date"] and mail["Message-ID"] and mail.get_content().strip() == "Attached."


def test_audit9_starttls_required_then_login_with_the_decoded_password(tmp_path):
    with smtp_server(tmp_path, tls="starttls", users={"mailer": PASSWORD}) as (inbox, port, cert):
        url = f"smtp://mailer:{quote(PASSWORD, safe='')}@127.0.0.1:{port}?starttls=true&cafile={cert}"
        SmtpMailer(url).send(_message())
    assert inbox.logins == [("mailer", PASSWORD, True)]
    assert [r for r, _ in inbox.messages] == [["books@acme.test"]]


def test_audit9_starttls_is_used_whenever_the_server_offers_it(tmp_path):
    with smtp_server(tmp_path, tls="starttls", users={"mailer": PASSWORD}) as (inbox, port, cert):
        SmtpMailer(f"smtp://mailer:{quote(PASSWORD, safe='')}@127.0.0.1:{port}?cafile={cert}").send(_message())
    assert inbox.logins == [("mailer", PASSWORD, True)] and len(inbox.messages) == 1


def test_audit9_implicit_tls_with_smtps(tmp_path):
    with smtp_server(tmp_path, tls="implicit", users={"mailer": PASSWORD}) as (inbox, port, cert):
        SmtpMailer(f"smtps://mailer:{quote(PASSWORD, safe='')}@127.0.0.1:{port}?cafile={cert}").send(_message())
    assert [(u, p) for u, p, _ in inbox.logins] == [("mailer", PASSWORD)] and len(inbox.messages) == 1


def test_audit9_the_password_is_never_sent_without_tls(tmp_path):
    """The old invoice sender logged in over a plain connection; the server here would have accepted it."""
    with smtp_server(tmp_path, users={"mailer": PASSWORD}) as (inbox, port, _):
        with pytest.raises(SmtpSecurityError, match="without TLS"):
            SmtpMailer(f"smtp://mailer:{quote(PASSWORD, safe='')}@127.0.0.1:{port}").send(_message())
    assert inbox.logins == [] and inbox.messages == []


def test_audit9_starttls_true_against_a_server_without_it_sends_nothing(tmp_path):
    with smtp_server(tmp_path) as (inbox, port, _):
        with pytest.raises(smtplib.SMTPNotSupportedError):
            SmtpMailer(f"smtp://127.0.0.1:{port}?starttls=true").send(_message())
    assert inbox.messages == []


def test_audit9_an_untrusted_certificate_is_refused(tmp_path):
    with smtp_server(tmp_path, tls="starttls", users={"mailer": PASSWORD}) as (inbox, port, _):
        with pytest.raises(ssl.SSLError):
            SmtpMailer(f"smtp://mailer:pw@127.0.0.1:{port}?starttls=true").send(_message())
    assert inbox.logins == [] and inbox.messages == []


def test_smtp_url_forms():
    assert mailer_for(None) is None
    with pytest.raises(ValueError, match="smtp:// or smtps://"):
        SmtpMailer("http://mail.example.com")
    with pytest.raises(ValueError, match="starttls"):
        SmtpMailer("smtp://mail.example.com?starttls=maybe")
    plain, tls = SmtpMailer("smtp://mail.example.com"), SmtpMailer("smtps://u:p%40ss@mail.example.com")
    assert (plain.port, plain.implicit_tls, plain.starttls) == (25, False, "auto")
    assert (tls.port, tls.implicit_tls, tls.password) == (465, True, "p@ss")


class _NoTransactionMailer:
    """Records each message and whether a database connection was held while it was sent."""

    def __init__(self, fb) -> None:
        self.fb = fb
        self.sent: list[tuple[EmailMessage, int]] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append((message, self.fb.engine.pool.checkedout()))


def test_audit9_no_email_is_sent_inside_a_unit_of_work(fb):
    """Issue 14 item 2: no network I/O while a transaction (on SQLite: the one write lock) is held."""
    mailer = _NoTransactionMailer(fb)
    fb.mailer = mailer
    make_tenant(fb, tenant_id="acme", catalog="agent-sessions", plan="sme")
    clear_outbox(fb, "acme")
    with fb.uow() as uow:
        tenants_repo.update_tenant(uow.conn, "acme", billing_email="finance@acme.test")
        uow.commit()
    sub = subscriptions.current(fb, SYSTEM, "acme")
    with fb.uow() as uow:
        data = usage_recorded(sub, 479, 480, included=600)
        publish(uow, Signal("usage.recorded", "acme", fb.clock.now(), subject=sub.id, data=data))
        uow.commit()
    assert len(delivery.deliver_pending(fb).delivered) == 2  # owner and billing e-mail, through fb.mailer
    invoice = invoices.list_invoices(fb, SYSTEM, "acme")[0]
    invoices.email_invoice(fb, SYSTEM, "acme", invoice.id, to="books@acme.test")
    assert len(mailer.sent) == 3 and [held for _, held in mailer.sent] == [0, 0, 0]
    assert sorted(m["To"] for m, _ in mailer.sent) == ["books@acme.test", "finance@acme.test", "owner@acme.test"]
