"""Shared set-up of the casework, pages and browser tests (this module holds no tests).

A service database (SQLite file) with two stored scoring runs of the serving tests' seeded world
(``test_serving_fixtures``: the same world and tiny model, imported, not copied), the de-identified
household profiles the runs store, and users with page passwords:

  wang    worker, one village (``VILLAGE``) in township ``TOWNSHIP``
  sun     worker, the whole township ``TOWNSHIP``
  zhao    worker, another township of the same county (``OTHER_TOWNSHIP``)
  li      supervisor of the county; zhou, a second supervisor (approves li's proposals)
  admin   administrator
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import test_serving_fixtures as fx

from doudi.policy import load_policy
from serving.auth import add_user
from serving.db import make_engine, session_factory, transaction, upgrade
from serving.service import score_world
from serving.websession import set_password

COUNTY = "530102"
TOWNSHIP = "530102001"
OTHER_TOWNSHIP = "530102002"
PASSWORD = "correct horse battery"
EARLY_AS_OF = pd.Timestamp("2025-01-01")
USERS = (
    ("wang", "worker", ["530102001001"]),
    ("sun", "worker", [TOWNSHIP]),
    ("zhao", "worker", [OTHER_TOWNSHIP]),
    ("li", "supervisor", [COUNTY]),
    ("zhou", "supervisor", [COUNTY]),
    ("admin", "admin", []),
    ("platform", "platform", ["53"]),
)


@dataclass(frozen=True)
class Stored:
    """A scored database, ready to copy: its file, the users' bearer tokens, the runs' ids."""

    path: Path
    tokens: dict[str, str]
    run_ids: tuple[int, ...]
    tiers: dict[str, float]


@functools.cache
def stored() -> Stored:
    """Score the world twice (early and at ``fx.AS_OF``) into a fresh database; built once per process."""
    folder = Path(tempfile.mkdtemp(prefix="doudi-cases-"))
    path = folder / "doudi.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    sessions = session_factory(engine)
    tiers = fx.tiers()
    model = fx.serving_model(tiers=tiers)
    runs = tuple(
        score_world(fx.world(), as_of, model, load_policy(), sessions=sessions).run_id
        for as_of in (EARLY_AS_OF, fx.AS_OF)
    )
    tokens = {}
    with transaction(sessions) as session:
        for name, role, regions in USERS:
            tokens[name] = add_user(session, name, role, region_codes=regions)[1]
            set_password(session, name, PASSWORD)
    engine.dispose()
    return Stored(path=path, tokens=tokens, run_ids=runs, tiers=tiers)  # type: ignore[arg-type]


def fresh_copy(directory: Path) -> str:
    """A private copy of the stored database in ``directory``; returns its SQLAlchemy URL."""
    target = directory / "doudi.db"
    shutil.copy(stored().path, target)
    return f"sqlite:///{target}"


def served(tmp_path: Path):
    """A copy of the stored database served by the app with the tiny model: yields (client, sessions)."""
    from fastapi.testclient import TestClient

    from doudi.settings import Settings
    from serving.app import create_app

    engine = make_engine(fresh_copy(tmp_path))
    app = create_app(Settings(data_dir=tmp_path), model=fx.serving_model(tiers=stored().tiers), engine=engine)
    with TestClient(app) as client:
        yield client, session_factory(engine)
    engine.dispose()
