"""`voxfleet up` as a real process (scripted providers, so it starts in
seconds): the monitor routes are served on the admin listener only, behind the
admin key it generated for itself, and SIGTERM stops both listeners."""

from __future__ import annotations

import contextlib
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port, up_process_handle
from voxfleet.roles.auth import ADMIN_KEY_FILE

pytestmark = pytest.mark.integration

MONITOR_ROUTES = ("/api/rooms", "/api/agents", "/api/scaling")


def refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_up_serves_the_monitor_on_its_admin_listener_only(tmp_path: Path) -> None:
    admin_port = free_port()
    env = {"VOXFLEET_PROVIDERS": "scripted", "VOXFLEET_ADMIN_PORT": str(admin_port)}
    with up_process_handle(tmp_path, **env) as (base, proc):
        admin = f"http://127.0.0.1:{admin_port}"
        key_file = tmp_path / ADMIN_KEY_FILE
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        auth = {"Authorization": f"Bearer {key}"}
        for route in MONITOR_ROUTES:
            assert httpx.get(base + route, headers=auth).status_code == 404, route
            assert httpx.get(admin + route).status_code == 401, route
            assert httpx.get(admin + route, headers=auth).status_code == 200, route
        # The admin listener's page is the monitor's operations page, not the caller's.
        page = httpx.get(f"{admin}/")
        assert page.status_code == 200 and 'id="sign-in"' in page.text
        assert 'id="sign-in"' not in httpx.get(f"{base}/").text
        assert httpx.post(f"{admin}/api/calls", json={}).status_code in (404, 405)
        assert httpx.get(f"{admin}/readyz").status_code == 200
        call = httpx.post(f"{base}/api/calls", json={}).json()
        assert httpx.get(f"{base}/api/calls/{call['id']}", headers=auth).status_code == 200

        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        assert proc.poll() is not None, "voxfleet up did not exit on SIGTERM"
        assert refused(f"{base}/livez") and refused(f"{admin}/livez")
    log = (tmp_path / "voxfleet-up.log").read_text()
    assert f"admin API: {admin}/api/rooms" in log
    assert str(key_file) in log
    assert key not in log
