"""E-mail over SMTP with the standard library (`smtplib`): the one way farebox sends mail.

Alerts (the delivery pass), invoice e-mails and portal sign-in links are all
sent with `Mailer.send(message)`, an `email.message.EmailMessage`; the mailer
adds `From`, `Date` and `Message-ID` when the message has none.

`FAREBOX_SMTP_URL` says where (docs/alerts.md):

- `smtp://host[:port]`: port 25; upgraded with STARTTLS when the server offers it;
- `smtp://user:password@host:587?starttls=true`: STARTTLS required;
- `smtps://user:password@host[:465]`: implicit TLS;
- `?starttls=false`: never upgrade (a local relay; no login is possible then);
- `?from=billing@example.com`: the sender; `?cafile=/path/ca.pem`: trust a private CA.

User and password are percent-decoded, and the password is only ever sent over
TLS: a login on a plain connection is refused. With no URL farebox sends no
alert e-mail (they wait in the outbox, `deliveries`) and prints invoice e-mails
to the console (`ConsoleMailer`, the embedded default, as for sign-in links).
Alert messages are rendered from Jinja templates (`templates/email/alert.txt`
and `alert.html`): a plain-text part plus an HTML alternative.
"""

from __future__ import annotations

import smtplib
import ssl
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

DEFAULT_SENDER = "farebox <billing@farebox.localhost>"

_templates = Environment(
    loader=PackageLoader("farebox", "templates/email"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    message_id: str  # stable per delivery, so a receiver can spot a resend

    def message(self) -> EmailMessage:
        """The MIME message: plain text with an HTML alternative (the mailer adds the sender)."""
        message = EmailMessage()
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Message-ID"] = self.message_id
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


def render(*, to: str, title: str, body: str, tenant_name: str, delivery_id: str) -> Mail:
    context = {"title": title, "body": body, "tenant_name": tenant_name}
    return Mail(
        to=to,
        subject=title,
        text=_templates.get_template("alert.txt").render(context),
        html=_templates.get_template("alert.html").render(context),
        message_id=f"<{delivery_id}@farebox>",
    )


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpSecurityError(smtplib.SMTPException):
    """The configured connection would expose the SMTP password (no TLS)."""


def _stamp(message: EmailMessage, sender: str) -> EmailMessage:
    if message["From"] is None:
        message["From"] = sender
    if message["Date"] is None:
        message["Date"] = formatdate(localtime=False)
    if message["Message-ID"] is None:
        message["Message-ID"] = make_msgid(domain="farebox")
    return message


class SmtpMailer:
    """Sends each message on its own connection (few are sent per pass, and a broken one stays broken alone).

    Never called inside a unit of work: the delivery pass sends between its claim and its
    record transactions, the invoice e-mail after reading the invoice.
    """

    def __init__(
        self, url: str, *, sender: str = DEFAULT_SENDER, timeout: float = 10.0, tls: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"FAREBOX_SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        query = parse_qs(parts.query)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.implicit_tls = parts.scheme == "smtps"
        starttls = query.get("starttls", ["auto"])[0].lower()
        if starttls not in ("auto", "true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"FAREBOX_SMTP_URL: starttls must be true, false or auto, not {starttls!r}")
        self.starttls = {"1": "true", "yes": "true", "0": "false", "no": "false"}.get(starttls, starttls)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = query.get("from", [sender])[0]
        self.timeout = timeout
        cafile = query.get("cafile", [None])[0]
        self.tls = tls or ssl.create_default_context(cafile=cafile)

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.tls)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def send(self, message: EmailMessage) -> None:
        _stamp(message, self.sender)
        with self._connect() as client:
            client.ehlo()
            secure = self.implicit_tls
            if not secure and (self.starttls == "true" or (self.starttls == "auto" and client.has_extn("starttls"))):
                client.starttls(context=self.tls)  # refused by smtplib when the server does not offer it
                client.ehlo()
                secure = True
            if self.username:
                if not secure:
                    raise SmtpSecurityError(
                        f"refusing to send the SMTP password to {self.host}:{self.port} without TLS: "
                        "use smtps:// or a server that offers STARTTLS"
                    )
                client.login(self.username, self.password or "")
            client.send_message(message)


class ConsoleMailer:
    """The embedded default without FAREBOX_SMTP_URL: says on the console what would have been sent."""

    def __init__(self, sender: str = DEFAULT_SENDER) -> None:
        self.sender = sender

    def send(self, message: EmailMessage) -> None:
        _stamp(message, self.sender)
        copy = f" (cc {message['Cc']})" if message["Cc"] else ""
        print(f"[farebox] e-mail to {message['To']}{copy}: {message['Subject']}", file=sys.stderr, flush=True)


def mailer_for(smtp_url: str | None) -> Mailer | None:
    """The SMTP mailer of FAREBOX_SMTP_URL, or None when none is set."""
    return SmtpMailer(smtp_url) if smtp_url else None
