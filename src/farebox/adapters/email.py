"""E-mail over SMTP with the standard library (`smtplib`).

`FAREBOX_SMTP_URL` says where: `smtp://[user:password@]host[:port]` (plain,
or STARTTLS with `?starttls=true`), `smtps://…` for implicit TLS.  With no URL
farebox sends nothing and the messages wait in the outbox (`deliveries`).
Messages are rendered from Jinja templates (`templates/email/alert.txt` and
`alert.html`): a plain-text part plus an HTML alternative.
"""

from __future__ import annotations

import smtplib
import ssl
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
    def send(self, mail: Mail) -> None: ...


class SmtpMailer:
    """Sends each mail on its own connection (the delivery pass sends few, and a broken one stays broken alone)."""

    def __init__(self, url: str, *, sender: str = DEFAULT_SENDER, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"FAREBOX_SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        query = parse_qs(parts.query)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.implicit_tls = parts.scheme == "smtps"
        self.starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = query.get("from", [sender])[0]
        self.timeout = timeout

    def message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = mail.message_id or make_msgid()
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    def send(self, mail: Mail) -> None:
        if self.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.starttls:
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(self.message(mail))
