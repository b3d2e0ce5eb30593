"""`voxfleet users add|passwd|list`: the monitor's users, from a shell on any
process that reaches the database (the first admin comes from a secret; see
docs/monitor.md). Passwords are read from the terminal, or from standard input
with ``--password-stdin`` for scripts, never from the command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime

from voxfleet.errors import ConfigError, StoreUnavailable, VoxfleetError
from voxfleet.settings import Settings
from voxfleet.store.users import UserRole


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("password: the two entries differ")
    return first


async def run_users(settings: Settings, args: argparse.Namespace) -> int:
    from voxfleet.roles.accounts import Accounts
    from voxfleet.store import create_engine, session_factory
    from voxfleet.store.users import UserStore

    engine = create_engine(settings.sqlalchemy_url)
    accounts = Accounts(UserStore(session_factory(engine)))
    try:
        if args.action == "list":
            for user in await accounts.users.list():
                last = user.last_login_at
                seen = datetime.fromtimestamp(last, UTC).isoformat() if last else "never"
                print(f"{user.name}\t{user.role.value}\tlast sign-in: {seen}")
            return 0
        password = read_password(args.password_stdin)
        if args.action == "add":
            await accounts.add(args.name, password, UserRole(args.role))
            print(f"user {args.name!r} added ({args.role})")
            return 0
        if not await accounts.set_password(args.name, password):
            raise ConfigError(f"name: no user named {args.name!r}")
        print(f"password of {args.name!r} changed")
        return 0
    except StoreUnavailable as e:
        raise ConfigError(
            f"{e.message} (or has no users table yet: run `voxfleet migrate` first)"
        ) from e
    except VoxfleetError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(e.message) from e
    finally:
        await engine.dispose()


def users_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(run_users(settings, args))


def add_users_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="the monitor's users: add, passwd, list")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in UserRole], default="viewer")
    passwd = actions.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    for p in (add, passwd):
        p.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
    actions.add_parser("list", help="list users, their roles and last sign-in")
