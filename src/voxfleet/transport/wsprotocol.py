"""The WebSocket protocol every voxfleet listener runs: uvicorn's Sans-I/O
implementation, with a short closing handshake.

Once the app has sent its close frame, uvicorn waits up to 10 s for the peer's
close reply, reading (and discarding) whatever the peer sends meanwhile. A
client that floods its socket and never answers kept a landing parsing its
frames for those 10 s, and every other call on the process waited behind it.
Here the peer gets one second to answer and nothing it sends after our close is
read: a misbehaving socket costs the process a timer, not its event loop."""

from __future__ import annotations

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

CLOSE_TIMEOUT_S = 1.0


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.close_timeout = CLOSE_TIMEOUT_S

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        closing = message["type"] == "websocket.close" and self.close_sent
        if closing and not self.transport.is_closing():
            # What the peer sends after our close frame goes unread; the close
            # timer ends the connection.
            self.read_paused = True
            self.transport.pause_reading()
