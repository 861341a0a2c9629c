"""Database engine, migrations and sessions: SQLite file by default, PostgreSQL by ``DOUDI_DATABASE_URL``.

The schema is owned by the Alembic migrations in ``serving/migrations`` (run programmatically, no
``alembic.ini``); the ORM in ``serving.orm`` must match them (a test compares both).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = "serving:migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite, create the folder and use WAL with a busy timeout.

    WAL lets the API read while a batch run writes; the 30 s busy timeout makes concurrent writers
    wait for each other instead of failing with "database is locked".
    """
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if database and database != ":memory:":
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def is_sqlite_file(engine: Engine) -> bool:
    """Whether the engine is a SQLite database in a file (the one kind with a WAL to checkpoint)."""
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


@contextmanager
def deferred_checkpoints(engine: Engine) -> Iterator[None]:
    """While inside, SQLite does not checkpoint its WAL in the commit that fills it past 1,000 pages: the
    long-running server calls :func:`checkpoint` between requests instead. On the way out the WAL is
    checkpointed and the engine's connections are opened as before.

    Measured on one-household score calls: every ~150th call copied the WAL into the database in its
    commit, 20-25 ms more than the ~3 ms the rest of its writes took, enough to set the p99 latency.
    """
    def no_automatic_checkpoint(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    sa.event.listen(engine, "connect", no_automatic_checkpoint)
    engine.dispose()  # connections already pooled were opened with the automatic checkpoint
    try:
        yield
    finally:
        sa.event.remove(engine, "connect", no_automatic_checkpoint)
        checkpoint(engine)
        engine.dispose()


def checkpoint(engine: Engine) -> None:
    """Copy what the WAL holds into the database without waiting for readers or writers (PASSIVE)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate the database to ``revision`` (the latest by default) and return the revision it is at."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The latest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with sessions() as session, session.begin():
        yield session
