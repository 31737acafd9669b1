"""Fixtures of the hub suite: the hub's database on both backends (an SQLite file, and a real
PostgreSQL 15 server the suite starts itself), a real Mosquitto."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.hub.db import HubDatabase
from edge.tools.broker import Mosquitto
from edge.tools.postgres import Postgres
from tests.support.broker import running_broker

_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with tempfile.TemporaryDirectory(prefix="edge-gate-pg-") as tmp:
        server = Postgres(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "hub.db")
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"hub_{next(_names)}")


@pytest.fixture
def db(database_url: str) -> Iterator[HubDatabase]:
    d = HubDatabase.open(database_url)
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with running_broker(tmp_path / "broker") as b:
        yield b
