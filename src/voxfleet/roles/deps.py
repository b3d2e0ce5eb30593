"""What a route may ask for, as ``Annotated`` dependencies: each route names the
parts it uses (the store, the profiles, the landing's media edge, ...) rather
than reaching through one service locator. The parts are the Runtime's, built
once per process for the roles it plays."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from voxfleet.domain.calls import is_call_id
from voxfleet.domain.profiles import Profiles
from voxfleet.errors import ConfigError, NotFound
from voxfleet.roles.backends import Backends
from voxfleet.roles.responses import shorten
from voxfleet.roles.runtime import LandingParts, Runtime
from voxfleet.settings import Settings
from voxfleet.store import CallRecord, CallStore


def get_runtime(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime


def get_settings(conn: HTTPConnection) -> Settings:
    return get_runtime(conn).settings


def get_profiles(conn: HTTPConnection) -> Profiles:
    return get_runtime(conn).profiles


def get_backends(conn: HTTPConnection) -> Backends:
    return get_runtime(conn).backends


def get_store(conn: HTTPConnection) -> CallStore:
    store = get_runtime(conn).store
    if store is None:
        raise ConfigError("this process has no store (it plays no landing, agent or monitor role)")
    return store


def get_landing(conn: HTTPConnection) -> LandingParts:
    landing = get_runtime(conn).landing
    if landing is None:
        raise ConfigError("this process plays no landing role")
    return landing


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ProfilesDep = Annotated[Profiles, Depends(get_profiles)]
BackendsDep = Annotated[Backends, Depends(get_backends)]
StoreDep = Annotated[CallStore, Depends(get_store)]
LandingDep = Annotated[LandingParts, Depends(get_landing)]


async def stored_call(store: CallStore, call_id: str) -> CallRecord:
    """The stored call ``call_id``; NotFound when there is none (or the id is
    not a call id at all)."""
    call = await store.get_call(call_id) if is_call_id(call_id) else None
    if call is None:
        raise NotFound(f"call: no call with id {shorten(call_id)}")
    return call
