"""The voxfleet command line: one entry point for every role."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from voxfleet.errors import ConfigError
from voxfleet.observability.logging import configure_logging, get_logger
from voxfleet.settings import Settings

log = get_logger("voxfleet")


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as e:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in e.errors()
        ]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from e


def cmd_up(args: argparse.Namespace) -> int:
    import uvicorn

    from voxfleet.roles.landing import create_app
    from voxfleet.roles.runtime import Runtime

    settings = _settings(host=args.host, port=args.port)
    configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime(settings)
    app = create_app(runtime)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=1 << 20,
        lifespan="on",
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(), name="uvicorn")
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn exposes a flag
            await asyncio.sleep(0.05)
        if server.started:
            shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
            print(f"\n  voxfleet is ready: open http://{shown}:{settings.port}/\n", flush=True)
        await task

    asyncio.run(serve())
    return 0 if server.started else 1


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxfleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run everything in one process on embedded defaults")
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="port to listen on (default 8080)")
    up.set_defaults(func=cmd_up)
    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.set_defaults(func=cmd_migrate)
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
