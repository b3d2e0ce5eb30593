// The media socket of one call, as the page keeps it: the first socket, then,
// after a drop, the call's resume URL (jittered backoff), and on the server's
// `reconnect` a move to a new socket made before the old one is let go. The
// microphone's frames are counted per socket and the last ones kept, so a
// resumed socket sends again what the agent missed (`ready.resume_from`) and what
// was captured while no socket was open. docs/protocol.md has the rules.

import { socketUrl } from './api.js';

/** Close codes after which the call is over for this page: it does not resume. */
const FINAL_CLOSES = new Set([1000, 1008, 4400, 4401, 4403, 4404, 4409, 4410, 4429, 4503]);
/** How long the page keeps trying to get back to its call after a drop. */
const RESUME_FOR_MS = 30000;
/** Frames kept for a resume: 10 s of 20 ms frames. */
const KEEP_FRAMES = 500;
/**
 * Unsent bytes allowed on the socket (1 s of 16 kHz PCM16). Beyond that the
 * network is stalling; sending the backlog later would arrive as a burst the
 * server treats as a flood, and stale audio is useless in a live call anyway.
 */
const MAX_SOCKET_BACKLOG = 32000;

export class CallSocket {
  /**
   * ``on.text(data)`` and ``on.audio(buffer)``: what the current socket brings;
   * ``on.resuming()``: a drop, trying to get back; ``on.closed(event)``: the
   * socket closed for good (the call is over for this page, or could not resume).
   */
  constructor(on) {
    this.on = on;
    this.ws = null;
    this.resumeUrl = null;
    this.sent = []; // frames sent on the current socket (the last KEEP_FRAMES)
    this.sentCount = 0;
    this.unsent = []; // frames captured while no socket was open
    this.live = false; // the current socket said `ready`
    this.done = false;
  }

  open(url) {
    const ws = new WebSocket(socketUrl(url));
    ws.binaryType = 'arraybuffer';
    this.adopt(ws);
  }

  /** Make ``ws`` the call's socket; what sockets it replaced still say is ignored. */
  adopt(ws) {
    this.live = false;
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      if (typeof e.data === 'string') this.text(e.data);
      else this.on.audio(e.data);
    };
    ws.onclose = (e) => { if (ws === this.ws) this.closed(e); };
    this.ws = ws;
  }

  text(data) {
    let msg = null;
    try {
      msg = JSON.parse(data);
    } catch {
      // not ours to fix; the protocol says ignore what we do not understand
    }
    if (msg?.type === 'ready' || msg?.type === 'reconnect') {
      if (typeof msg.resume_url === 'string') this.resumeUrl = msg.resume_url;
    }
    if (msg?.type === 'ready') {
      this.resumeAttempts = 0;
      this.resumeDeadline = null;
      this.sendAgain(msg.resume_from);
      this.live = true;
    } else if (msg?.type === 'reconnect' && this.resumeUrl) {
      this.moveTo(this.resumeUrl);
    }
    this.on.text(data);
  }

  /**
   * The server is going away (a deploy): open the resume URL now; the move is
   * made once the new socket speaks (it says `ready`): a server that is itself
   * going away refuses it, and the old socket carries on meanwhile.
   */
  moveTo(resumeUrl, attempt = 1) {
    const old = this.ws;
    const next = new WebSocket(socketUrl(resumeUrl));
    next.binaryType = 'arraybuffer';
    let taken = false;
    next.onmessage = (e) => {
      if (taken || typeof e.data !== 'string') return;
      taken = true;
      this.adopt(next);
      old?.close(1000, 'moved');
      this.text(e.data);
    };
    next.onclose = () => {
      if (taken || this.done || this.ws !== old || old.readyState !== WebSocket.OPEN) return;
      const delay = Math.min(1000, 100 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      setTimeout(() => this.moveTo(this.resumeUrl, attempt + 1), delay);
    };
  }

  closed(event) {
    if (this.done) return;
    if (!this.resumeUrl || FINAL_CLOSES.has(event.code)) {
      this.on.closed(event);
      return;
    }
    // A drop, a crash, a restart: the call waits for us; get back with backoff.
    this.resumeDeadline ??= Date.now() + RESUME_FOR_MS;
    if (Date.now() > this.resumeDeadline) {
      this.on.closed(event);
      return;
    }
    this.on.resuming();
    const attempt = (this.resumeAttempts = (this.resumeAttempts ?? 0) + 1);
    const delay = Math.min(2000, 100 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
    this.resumeTimer = setTimeout(() => { if (!this.done) this.open(this.resumeUrl); }, delay);
  }

  /** A microphone frame: sent, or kept while no socket is open. */
  send(pcm) {
    const ws = this.ws;
    if (!this.live || !ws || ws.readyState !== WebSocket.OPEN || this.unsent.length) {
      this.unsent.push(pcm);
      if (this.unsent.length > KEEP_FRAMES) this.unsent.shift();
      return;
    }
    if (ws.bufferedAmount > MAX_SOCKET_BACKLOG) return;
    this.sendFrame(ws, pcm);
  }

  sendFrame(ws, pcm) {
    ws.send(pcm);
    this.sent.push(pcm);
    if (this.sent.length > KEEP_FRAMES) this.sent.shift();
    this.sentCount += 1;
  }

  /**
   * A socket took the call: first the previous socket's frames from
   * ``resumeFrom`` on (counted from 1; the agent did not hear them), then what
   * was captured while no socket was open.
   */
  sendAgain(resumeFrom) {
    let again = [];
    if (Number.isInteger(resumeFrom)) {
      const firstKept = this.sentCount - this.sent.length + 1;
      again = this.sent.slice(Math.max(0, resumeFrom - firstKept));
    }
    again = again.concat(this.unsent);
    this.sent = [];
    this.sentCount = 0;
    this.unsent = [];
    for (const pcm of again) this.sendFrame(this.ws, pcm);
  }

  sendText(body) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(body));
  }

  close(code, reason) {
    this.done = true;
    clearTimeout(this.resumeTimer);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(code, reason);
  }
}
