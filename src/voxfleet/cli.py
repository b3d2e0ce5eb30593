"""The voxfleet command line: one entry point for every role."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from voxfleet.errors import ConfigError
from voxfleet.observability.logging import configure_logging, get_logger
from voxfleet.settings import Settings
from voxfleet.users_cli import add_users_parser

log = get_logger("voxfleet")


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValueError as e:
        if not isinstance(e, ValidationError):  # raised by a settings source (*_FILE)
            raise ConfigError(f"invalid configuration: {e}") from e
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in e.errors()
        ]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from e


def cmd_up(args: argparse.Namespace) -> int:
    settings = _settings(host=args.host, port=args.port, admin_port=args.admin_port)
    configure_logging(settings.log_level, settings.log_format)
    from voxfleet.roles.auth import ensure_admin_key
    from voxfleet.roles.runtime import Role
    from voxfleet.serve import run_roles

    settings, key_file = ensure_admin_key(settings)
    return run_roles(
        settings,
        frozenset(Role),
        migrate_on_start=True,
        banner=True,
        admin_listener=True,
        admin_key_file=key_file,
    )


def _role_command(role: str, default_port: int) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        overrides: dict[str, object] = {"host": args.host, "port": args.port or default_port}
        if role == "agent":
            overrides["agent_capacity"] = args.capacity
        settings = _settings(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        if settings.redis_url is None:
            raise ConfigError(
                f"voxfleet {role} runs beside other processes and needs VOXFLEET_REDIS_URL "
                "(and VOXFLEET_DATABASE_URL); for one process use `voxfleet up`"
            )
        from voxfleet.roles.auth import ensure_admin_key
        from voxfleet.roles.runtime import Role
        from voxfleet.serve import run_roles

        if role == "monitor":
            settings, _key_file = ensure_admin_key(settings)
        return run_roles(settings, frozenset({Role(role)}), migrate_on_start=False)

    return run


def cmd_migrate(_args: argparse.Namespace) -> int:
    from voxfleet.store import create_engine, migrate

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)

    async def run() -> None:
        engine = create_engine(settings.sqlalchemy_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    log.info("database migrated")
    return 0


def cmd_check_providers(_args: argparse.Namespace) -> int:
    from voxfleet.providers.check import check, report
    from voxfleet.providers.registry import build_providers

    settings = _settings()
    configure_logging("ERROR", settings.log_format)  # the report is the output

    async def run() -> bool:
        providers = build_providers(settings)
        try:
            outcomes = await check(providers)
        finally:
            await providers.close()
        print(report(outcomes))
        return all(o.ok for o in outcomes)

    return 0 if asyncio.run(run()) else 1


def cmd_users(args: argparse.Namespace) -> int:
    from voxfleet.users_cli import users_command

    settings = _settings()
    configure_logging("WARNING", settings.log_format)  # the command's output is the report
    return users_command(settings, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxfleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run everything in one process on embedded defaults")
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="port to listen on (default 8080)")
    up.add_argument(
        "--admin-port", type=int, help="port of the admin API (monitor routes; default 8082)"
    )
    up.set_defaults(func=cmd_up)
    for role, port, text in (
        ("landing", 8080, "public page, call API and media edge"),
        ("agent", 8081, "agent worker (probes and metrics on --port)"),
        ("monitor", 8082, "scaling signal, live rooms/agents and calls API (sign-in)"),
    ):
        p = sub.add_parser(role, help=text)
        p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, help=f"port to listen on (default {port})")
        if role == "agent":
            p.add_argument("--capacity", type=int, help="rooms this agent serves at once")
        p.set_defaults(func=_role_command(role, port))
    add_users_parser(sub)
    sub.choices["users"].set_defaults(func=cmd_users)
    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.set_defaults(func=cmd_migrate)
    check = sub.add_parser(
        "check-providers",
        help="ask every speech and language provider once and report (exit 1 if any failed)",
    )
    check.set_defaults(func=cmd_check_providers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as e:
        print(f"voxfleet: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
