// The call's link when the server's transport is LiveKit (the create-call
// response carries `livekit`): the page joins the call's room as `caller`,
// publishes its microphone, plays the agent's audio track, and reads the
// agent's JSON messages (the WebSocket's text frames, docs/protocol.md) from
// data packets of topic `voxfleet`. Same callbacks as call-socket.js, so
// call.js treats both alike. livekit-client is bundled (static/vendor/, built
// by `./vf web`) and loaded only for such calls.

import { StartError } from './api.js';

const TOPIC = 'voxfleet';
const decoder = new TextDecoder();

export class LiveKitLink {
  /**
   * ``on.text(data)``: an agent message (JSON text); ``on.agent()``: the
   * agent's audio arrived (the call is live even before its `ready`); ``on.resuming()``:
   * LiveKit is reconnecting; ``on.reconnected()``: it is back;
   * ``on.closed(event)``: the room is gone for this page (``event.code`` as a
   * socket's: 1000 the call ended, 1006 the connection was lost).
   */
  constructor(on) {
    this.on = on;
    this.room = null;
    this.done = false;
    this.joined = false;
    this.audioEls = [];
  }

  /** Join ``join.room`` at ``join.url`` with ``join.token``; publish ``micTrack``. */
  async open(join, micTrack) {
    const { Room, RoomEvent, Track, DisconnectReason } = await import('./vendor/livekit-client.esm.js');
    if (this.done) return;
    const room = new Room({ adaptiveStream: false, dynacast: false });
    this.room = room;
    room.on(RoomEvent.DataReceived, (payload, _participant, _kind, topic) => {
      if (topic === TOPIC && !this.done) this.on.text(decoder.decode(payload));
    });
    room.on(RoomEvent.TrackSubscribed, (track) => {
      if (track.kind !== Track.Kind.Audio) return;
      const el = track.attach();
      el.hidden = true;
      document.body.append(el);
      this.audioEls.push(el);
      window.voxfleetPlayed = true; // for tests and diagnostics, as the socket path
      this.on.agent();
    });
    room.on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((el) => el.remove()));
    room.on(RoomEvent.Reconnecting, () => this.on.resuming());
    room.on(RoomEvent.Reconnected, () => this.on.reconnected());
    room.on(RoomEvent.Disconnected, (reason) => {
      if (this.done || !this.joined) return; // a failed join is reported by open()
      const ended = reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.CLIENT_INITIATED;
      this.on.closed({ code: ended ? 1000 : 1006 });
    });
    try {
      await room.connect(join.url, join.token, { autoSubscribe: true });
    } catch (err) {
      throw new StartError(`Could not join the call's audio room (${err?.message || err}). Press Talk to try again.`);
    }
    this.joined = true;
    if (this.done) {
      await room.disconnect();
      return;
    }
    await room.localParticipant.publishTrack(micTrack, { source: Track.Source.Microphone });
    await room.startAudio().catch(() => {}); // inside the Talk click's activation where it can be
  }

  /** Audio goes as the published track; frames from the capture worklet are not needed. */
  send() {}

  /** The caller hangs up: leaving the room is the hang-up (LiveKit tells the landing). */
  sendText() {}

  close() {
    this.done = true;
    for (const el of this.audioEls) el.remove();
    this.audioEls = [];
    this.room?.disconnect().catch(() => {});
  }
}
