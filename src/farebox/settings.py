"""Settings from the environment (all optional; the defaults run embedded)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from farebox.adapters.db.engine import DEFAULT_URL


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_URL
    operator_key: str | None = None  # FAREBOX_OPERATOR_KEY: accepted as an operator API key
    smtp_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # FAREBOX_PUBLIC_URL: the base of every link farebox sends (F4)
    webhook_allow_private: bool = False  # FAREBOX_WEBHOOK_ALLOW_PRIVATE: endpoints on loopback/private addresses (F13)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("FAREBOX_DATABASE_URL", DEFAULT_URL),
            operator_key=os.environ.get("FAREBOX_OPERATOR_KEY") or None,
            smtp_url=os.environ.get("FAREBOX_SMTP_URL") or None,
            host=os.environ.get("FAREBOX_HOST", "127.0.0.1"),
            port=int(os.environ.get("FAREBOX_PORT", "8000")),
            public_url=(os.environ.get("FAREBOX_PUBLIC_URL") or "").rstrip("/") or None,
            webhook_allow_private=os.environ.get("FAREBOX_WEBHOOK_ALLOW_PRIVATE", "").lower() in ("1", "true", "yes"),
        )
