"""An agent pod's deletion cost, kept current: the pod's
``controller.kubernetes.io/pod-deletion-cost`` annotation is the number of
rooms it serves, so when the autoscaler scales agents down, Kubernetes removes
idle pods first and a busy one (which would have to hand its rooms over) last.

Runs only where ``VOXFLEET_POD_NAME`` and ``VOXFLEET_POD_NAMESPACE`` are set
(the Helm chart sets them from the downward API, with a Role that lets the
agent patch its own pod). The patch goes through lightkube with the pod's
service-account credentials; a failed patch is logged and tried again at the
next change, never fatal: the annotation is a hint to the scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod
from lightkube.types import PatchType

from voxfleet.observability.logging import get_logger

log = get_logger(__name__)
ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
CHECK_EVERY_S = 2.0  # rooms change at call speed; a patch a couple of seconds late is fine


class PodDeletionCost:
    def __init__(
        self, pod: str, namespace: str, client: Callable[[], AsyncClient] = AsyncClient
    ) -> None:
        """``client``: makes the Kubernetes client (in a pod: its service account)."""
        self._pod = pod
        self._namespace = namespace
        self._client = client

    async def run(self, rooms: Callable[[], int], every: float = CHECK_EVERY_S) -> None:
        """Keep the annotation equal to ``rooms()`` until cancelled."""
        client = self._client()
        last: int | None = None
        try:
            while True:
                current = rooms()
                if current != last:
                    try:
                        await self._patch(client, current)
                        last = current
                    except Exception as e:  # a hint: never fatal, tried again
                        log.warning("pod deletion cost not set", pod=self._pod, error=repr(e))
                await asyncio.sleep(every)
        finally:
            await client.close()

    async def _patch(self, client: AsyncClient, cost: int) -> None:
        body = {"metadata": {"annotations": {ANNOTATION: str(cost)}}}
        await client.patch(
            Pod, self._pod, body, namespace=self._namespace, patch_type=PatchType.MERGE
        )
