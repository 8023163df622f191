"""Shared fixtures.

`fb` is a farebox service container on a migrated database with the bundled
catalogs loaded, once per engine: SQLite always, PostgreSQL too when
FAREBOX_TEST_POSTGRES holds a server URL (a fresh database is created for the
run).  Its clock is a FrozenClock the test moves.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from farebox.bootstrap import Farebox
from farebox.demo import data as demo
from farebox.kernel.clock import FrozenClock
from farebox.settings import Settings
from farebox.storage.engine import make_engine, normalise_url
from farebox.storage.migrate import upgrade
from farebox.storage.tables import metadata

from support import SRC, START, subprocess_env, tier_missing  # noqa: F401  (re-exported for tests)

PG_URL = os.environ.get("FAREBOX_TEST_POSTGRES")
ENGINES = ["sqlite"] + (["postgres"] if PG_URL else [])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run."""
    if not PG_URL:
        tier_missing("FAREBOX_TEST_POSTGRES is not set", require="FAREBOX_REQUIRE_POSTGRES")
    server = make_url(normalise_url(PG_URL))
    name = f"farebox_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(engine) -> None:
    names = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        else:
            for n in names:
                conn.execute(text(f'DELETE FROM "{n}"'))


@pytest.fixture(autouse=True)
def _listeners_do_not_outlive_their_test() -> Iterator[None]:
    """T19: a listener or due handler a test registers is gone after it (the areas' own stay registered)."""
    from farebox.events import due, signals

    signals.load_all()
    listeners = {kind: list(fns) for kind, fns in signals._LISTENERS.items()}
    handlers = dict(due.HANDLERS)
    yield
    for kind in list(signals._LISTENERS):
        if kind not in listeners:
            del signals._LISTENERS[kind]
    for kind, fns in listeners.items():
        signals._LISTENERS[kind] = fns
    due.HANDLERS.clear()
    due.HANDLERS.update(handlers)


def pytest_sessionstart(session: pytest.Session) -> None:
    """T9: with FAREBOX_REQUIRE_POSTGRES=1 the PostgreSQL half of every engine-parametrised test must run."""
    if os.environ.get("FAREBOX_REQUIRE_POSTGRES") == "1" and not PG_URL:
        raise pytest.UsageError("FAREBOX_REQUIRE_POSTGRES=1 but FAREBOX_TEST_POSTGRES is not set")


@pytest.fixture(params=ENGINES)
def db_url(request, tmp_path: Path) -> str:
    """A migrated, empty database URL, on each engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'farebox.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url, pool=False)
    _truncate(engine)
    engine.dispose()
    return url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def fb(db_url: str, clock: FrozenClock) -> Iterator[Farebox]:
    """Services on a migrated database with the bundled catalogs loaded."""
    engine = make_engine(db_url)
    box = Farebox(engine=engine, clock=clock, settings=Settings(database_url=db_url, operator_key="test-operator-key"))
    demo.load_catalogs(box)
    yield box
    engine.dispose()
