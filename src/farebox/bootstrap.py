"""The composition root: the one place that wires adapters to services."""

from __future__ import annotations

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

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, readonly=readonly)


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None, engine: Engine | None = None) -> Farebox:
    settings = settings or Settings.from_env()
    return Farebox(
        engine=engine or make_engine(settings.database_url),
        clock=clock or SystemClock(),
        settings=settings,
    )
