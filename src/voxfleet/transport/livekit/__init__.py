"""LiveKit as the callers' transport (``VOXFLEET_TRANSPORT=livekit``).

The room of a call is named by the call id; the caller joins as ``caller``
with a room-scoped token from ``POST /api/calls``, agents as ``agent-<id>``.
The landing issues tokens (``grants.py``) and hears LiveKit's webhooks
(``webhook.py``); the agent side carries the media."""
