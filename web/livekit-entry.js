// What the page uses of livekit-client, bundled into one ES module that the
// server serves itself (src/voxfleet/web/static/vendor/): no CDN at run time.
export { ConnectionState, DisconnectReason, Room, RoomEvent, Track } from 'livekit-client';
