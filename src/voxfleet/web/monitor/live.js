// The live feed: GET /api/live over a WebSocket. The first message is a
// snapshot, then changes; a close (1001 when a monitor replica drains) is
// followed by a reconnect with jittered backoff, to any replica, and a fresh
// snapshot replaces everything.

const MAX_DELAY_MS = 10000;

export class LiveFeed {
  constructor(onState, onStatus, onCaption) {
    this.onState = onState;
    this.onStatus = onStatus;
    this.onCaption = onCaption;
    this.watching = null; // the call whose captions are shown; asked again after a reconnect
    this.rooms = new Map();
    this.agents = new Map();
    this.scaling = null;
    this.failures = 0;
    this.stopped = false;
    this.ws = null;
  }

  start() {
    this.stopped = false;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = (this.ws = new WebSocket(`${scheme}://${location.host}/api/live`));
    ws.onopen = () => {
      this.onStatus('live');
      if (this.watching) this.watch(this.watching);
    };
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      this.ws = null;
      if (this.stopped) return;
      if (event.code === 4401) {
        this.onStatus('signed-out');
        return;
      }
      this.failures += 1;
      const ceiling = Math.min(MAX_DELAY_MS, 500 * 2 ** this.failures);
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      this.onStatus(`reconnecting in ${Math.round(delay / 1000)} s`);
      setTimeout(() => this.stopped || this.start(), delay);
    };
  }

  watch(callId) {
    this.watching = callId;
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'watch', call_id: callId }));
    }
  }

  stop() {
    this.stopped = true;
    this.ws?.close(1000);
  }

  receive(message) {
    if (message.type === 'snapshot') {
      this.failures = 0;
      this.rooms = new Map(message.rooms.map((r) => [r.room_id, r]));
      this.agents = new Map(message.agents.map((a) => [a.agent_id, a]));
      this.scaling = message.scaling;
    } else if (message.type === 'changes') {
      apply(this.rooms, message.rooms, 'room_id');
      apply(this.agents, message.agents, 'agent_id');
      if (message.scaling) this.scaling = message.scaling;
    } else {
      if (message.type === 'caption') this.onCaption(message);
      return;
    }
    this.onState(this);
  }
}

function apply(map, change, key) {
  if (!change) return;
  for (const item of change.upsert) map.set(item[key], item);
  for (const id of change.remove) map.delete(id);
}
