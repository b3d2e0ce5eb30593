"""The command line: configuration errors end with exit code 2 and a message, not a
traceback; ``voxfleet migrate`` builds the schema in a real SQLite file."""

from __future__ import annotations

import io
import logging
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tests.support.server import free_port
from voxfleet.cli import main
from voxfleet.store.db import alembic_config

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_env")]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures the root logger; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def alembic_versions(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as connection:
        return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]


def test_migrate_in_prod_without_a_secret_exits_2_naming_secret_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))

    assert main(["migrate"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("voxfleet: ")
    assert "secret_key" in err
    assert "Traceback" not in err
    assert not (tmp_path / "voxfleet.db").exists()


def test_migrate_with_unreadable_secret_file_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXFLEET_SECRET_KEY_FILE", str(tmp_path / "no-such-secret"))

    assert main(["migrate"]) == 2
    assert "VOXFLEET_SECRET_KEY_FILE" in capsys.readouterr().err


def test_migrate_creates_the_sqlite_database_at_head(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"  # does not exist yet: migrate creates it
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(data_dir))
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None

    assert main(["migrate"]) == 0
    assert alembic_versions(data_dir / "voxfleet.db") == [head]

    # Migrating an up-to-date database is a no-op.
    assert main(["migrate"]) == 0
    assert alembic_versions(data_dir / "voxfleet.db") == [head]


def test_up_with_a_busy_admin_port_exits_2_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["up", "--port", str(free_port()), "--admin-port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"admin_port: cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_monitor_in_prod_without_an_admin_key_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_ENV", "prod")
    monkeypatch.setenv("VOXFLEET_SECRET_KEY", "a-production-secret-of-32-chars!")
    monkeypatch.setenv("VOXFLEET_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))

    assert main(["monitor", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "admin_api_key" in err and "VOXFLEET_ADMIN_API_KEY" in err
    assert not (tmp_path / "admin-api-key").exists()


def test_check_providers_reports_each_provider_and_fails_when_one_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    endpoints = tmp_path / "endpoints.toml"
    endpoints.write_text(
        f'[endpoint.down]\nurl = "http://127.0.0.1:{free_port()}/v1"\nauth = "none"\nllm = "m"\n'
    )
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOXFLEET_PROVIDERS", "scripted")
    monkeypatch.setenv("VOXFLEET_ENDPOINTS_FILE", str(endpoints))
    monkeypatch.setenv("VOXFLEET_LLM", "down,scripted")

    assert main(["check-providers"]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["ok", "tts", "scripted-tts"],
        ["ok", "stt", "scripted-stt"],
        ["FAIL", "llm", "down"],
        ["ok", "llm", "scripted-llm"],
    ]
    assert "cannot connect" in lines[2]


def test_users_are_added_listed_and_given_new_passwords(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXFLEET_DATA_DIR", str(tmp_path))

    def with_password(password: str, *argv: str) -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        return main(["users", *argv, "--password-stdin"])

    assert main(["users", "list"]) == 2
    assert "run `voxfleet migrate` first" in capsys.readouterr().err
    assert main(["migrate"]) == 0
    assert with_password("a long password", "add", "ops", "--role", "admin") == 0
    assert with_password("another password", "add", "watcher") == 0
    capsys.readouterr()
    assert with_password("short", "add", "someone") == 2
    assert "password: must be at least 12 characters" in capsys.readouterr().err
    assert with_password("a long password", "add", "ops") == 2
    assert "'ops' already exists" in capsys.readouterr().err
    assert with_password("a new password!", "passwd", "nobody") == 2
    assert "no user named 'nobody'" in capsys.readouterr().err
    assert with_password("a new password!", "passwd", "watcher") == 0

    assert main(["users", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [
        "ops\tadmin\tlast sign-in: never",
        "watcher\tviewer\tlast sign-in: never",
    ]
    assert "a long password" not in "".join(lines)
