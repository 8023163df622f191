"""Settings from the environment (all optional; the defaults run embedded)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from farebox.storage.engine import DEFAULT_URL, PoolSettings


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_URL
    operator_key: str | None = None  # FAREBOX_OPERATOR_KEY: accepted as an operator API key
    smtp_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # FAREBOX_PUBLIC_URL: the base of every link farebox sends
    webhook_allow_private: bool = False  # FAREBOX_WEBHOOK_ALLOW_PRIVATE: endpoints on loopback/private addresses
    payment_provider: str = "sandbox"  # FAREBOX_PAYMENT_PROVIDER: sandbox | stripe
    invoice_issuer: str = "FB"  # FAREBOX_INVOICE_ISSUER
    invoice_number_pattern: str = "{issuer}-{year}-{seq:06d}"  # FAREBOX_INVOICE_NUMBER_PATTERN (G13)
    # each API or worker process's connection pool (PostgreSQL; SQLite files too).  A request that waits
    # longer than `db_pool_timeout` seconds for a connection answers 503 storage_unavailable with Retry-After.
    db_pool_size: int = 10  # FAREBOX_DB_POOL_SIZE
    db_max_overflow: int = 10  # FAREBOX_DB_MAX_OVERFLOW
    db_pool_timeout: float = 10.0  # FAREBOX_DB_POOL_TIMEOUT

    @property
    def pool(self) -> PoolSettings:
        return PoolSettings(size=self.db_pool_size, max_overflow=self.db_max_overflow, timeout=self.db_pool_timeout)

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
            payment_provider=os.environ.get("FAREBOX_PAYMENT_PROVIDER", "sandbox"),
            invoice_issuer=os.environ.get("FAREBOX_INVOICE_ISSUER", "FB"),
            invoice_number_pattern=os.environ.get("FAREBOX_INVOICE_NUMBER_PATTERN", "{issuer}-{year}-{seq:06d}"),
            db_pool_size=int(os.environ.get("FAREBOX_DB_POOL_SIZE", "10")),
            db_max_overflow=int(os.environ.get("FAREBOX_DB_MAX_OVERFLOW", "10")),
            db_pool_timeout=float(os.environ.get("FAREBOX_DB_POOL_TIMEOUT", "10")),
        )
