"""Transports between callers and rooms: the built-in WebSocket media edge and
its room-scoped tokens."""
