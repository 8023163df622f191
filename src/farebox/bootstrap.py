"""The composition root: the one place that wires adapters to services."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from farebox.adapters.clock import SystemClock
from farebox.adapters.db.engine import make_engine
from farebox.adapters.db.uow import UnitOfWork
from farebox.domain.clock import Clock
from farebox.settings import Settings


@dataclass
class Farebox:
    """What every service function receives: storage, the real clock, settings."""

    engine: Engine
    clock: Clock
    settings: Settings = field(default_factory=Settings)
    send_sign_in_link: Callable[[str, str], None] = field(default=lambda email, link: print_sign_in_link(email, link))

    def __post_init__(self) -> None:
        from farebox.services import signals

        signals.load_all()  # listeners and due-item handlers of every area

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, readonly=readonly)


def print_sign_in_link(email: str, link: str) -> None:
    """The embedded default: portal sign-in links are printed to the server's console."""
    print(f"[farebox] sign-in link for {email}: {link}", file=sys.stderr, flush=True)


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None, engine: Engine | None = None) -> Farebox:
    settings = settings or Settings.from_env()
    return Farebox(
        engine=engine or make_engine(settings.database_url, pool_settings=settings.pool),
        clock=clock or SystemClock(),
        settings=settings,
    )
