"""The monitor's operations page: ``/`` and its files under ``/monitor/``
(plain ES modules and the vendored uPlot bundle; nothing from a CDN). Served
where the monitor routes are and the landing's page is not: `voxfleet
monitor`'s port, `voxfleet up`'s admin listener. The page is open; everything
it shows comes from routes that need a signed-in user."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse

MONITOR_DIR = files("voxfleet").joinpath("web/monitor")
router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(str(MONITOR_DIR.joinpath("index.html")))
