// One call, from the Talk press to the end: microphone out, agent audio in,
// captions and states to the view; its socket (resumes, moves) is call-socket.js.
// The wire format is docs/protocol.md; unknown message types and fields are ignored.

import {
  buildAudioGraph, createCall, INSECURE_TEXT, openMicrophone, StartError,
} from './api.js';
import { CallSocket } from './call-socket.js';
import { LiveKitLink } from './call-livekit.js';
import { AGENT_LABEL, profileTitles, view } from './view.js';

/** Rates assumed until `ready` says otherwise (docs/protocol.md). */
const DEFAULT_INPUT_RATE = 16000;
const DEFAULT_AGENT_RATE = 22050;
/** How long the agent's last words may keep playing after the call has ended. */
const DRAIN_TIMEOUT_MS = 4000;

const ENDED_TEXT = {
  caller_ended: 'You ended the call.',
  caller_disconnected: 'The call was disconnected.',
  flood: 'Too much audio arrived at once, so the call was stopped. Press Talk to try again.',
  max_duration: 'The call reached its time limit.',
  agent_ended: 'The agent ended the call. Goodbye!',
  agent_error: 'The agent ran into a problem and ended the call. Press Talk to try again.',
  no_agent: 'No agent is free right now. Please try again in a moment.',
  never_connected: 'The call never connected. Press Talk to try again.',
  server_shutdown: 'The server is restarting. Please call again in a moment.',
  protocol_error: 'The page sent something the server could not use, so the call was stopped. Press Talk to try again.',
};
/** End reasons that are the normal end of a conversation rather than a failure. */
const NORMAL_ENDS = new Set(['caller_ended', 'caller_disconnected', 'max_duration', 'agent_ended']);

/** Close codes of docs/protocol.md, for when no `ended` message said why. */
const CLOSE_TEXT = {
  1000: 'The call ended.',
  1001: 'The server went away. Press Talk to call again.',
  1006: 'The connection to the server was lost. Press Talk to call again.',
  1011: 'The server had a problem and ended the call. Press Talk to try again.',
  4400: 'The call link was malformed. Press Talk again.',
  4401: 'The call link expired. Press Talk again.',
  4403: 'The call link belongs to another call. Press Talk again.',
  4404: 'That call no longer exists. Press Talk again.',
  1008: 'The page sent something the server could not use, so the call was stopped. Press Talk to try again.',
  4409: 'This call has already ended or is open somewhere else. Press Talk for a new one.',
  4410: 'This call was picked up in another window.',
  4429: 'Too much audio was sent at once, so the call was stopped. Press Talk to try again.',
  4503: 'No agent is free right now. Please try again in a moment.',
};

// ---------------------------------------------------------------- the call

/** One call, from the Talk press to the end; a new Talk press makes a new Call. */
export class Call {
  /** ``isCurrent()``: whether this call still owns the page (a newer one may). */
  constructor(captions, isCurrent) {
    this.captions = captions;
    this.isCurrent = isCurrent;
    this.socket = null;
    this.done = false;
    this.ready = false;
    this.playing = false;
    this.abort = new AbortController();
    this.agentLabel = 'Agent';
  }

  async start(profile) {
    view.conn('connecting');
    try {
      const modules = this.openAudioContext();
      // The mic comes before the call: the link's token is short-lived, and a call
      // should not be created for someone who then refuses the microphone.
      this.stream = await openMicrophone();
      if (this.done) return this.releaseAudio(false); // End pressed during the prompt
      await modules;
      if (this.done) return this.releaseAudio(false);
      this.wireAudio();
      const call = await createCall(profile, this.abort.signal);
      if (this.done) return undefined;
      this.agentLabel = profileTitles.get(call.profile) || profileTitles.get(profile) || 'Agent';
      const on = {
        text: (data) => this.onText(data),
        audio: (buffer) => this.onAudio(buffer),
        resuming: () => view.conn('reconnecting'),
        agent: () => this.onReady({}),
        reconnected: () => { if (!this.done) view.conn(this.ready ? 'connected' : 'connecting'); },
        closed: (event) => this.onClose(event),
      };
      if (call.livekit) { // the server's transport is LiveKit: join the call's room
        this.socket = new LiveKitLink(on);
        await this.socket.open(call.livekit, this.stream.getAudioTracks()[0]);
      } else {
        this.socket = new CallSocket(on);
        this.socket.open(call.media_url);
      }
    } catch (err) {
      if (this.done || err.name === 'AbortError') return undefined;
      const text = err instanceof StartError ? err.message : `Could not start the call (${err.message}).`;
      this.finish('error', text, { kind: 'error' });
    }
    return undefined;
  }

  /**
   * Must run before the first await: browsers let audio start only inside the
   * click's user activation, and a permission prompt can outlast it.
   * Returns the promise of both worklet modules being loaded.
   */
  openAudioContext() {
    // Microphone and AudioWorklet exist only on https or localhost pages.
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia || !window.AudioWorkletNode) {
      throw new StartError(INSECURE_TEXT);
    }
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    this.ctx.resume().catch(() => {});
    const modules = Promise.all([
      this.ctx.audioWorklet.addModule('/static/capture-worklet.js'),
      this.ctx.audioWorklet.addModule('/static/playback-worklet.js'),
    ]);
    // Awaited later, but if the mic fails first it rejects unwatched once the context closes.
    modules.catch(() => {});
    return modules;
  }

  wireAudio() {
    this.nodes = buildAudioGraph(this.ctx, this.stream);
    this.nodes.capture.port.onmessage = (e) => this.onMicFrame(e.data);
    this.nodes.playback.port.onmessage = (e) => this.onPlaybackState(e.data);
    for (const track of this.stream.getAudioTracks()) {
      track.addEventListener('ended', () => {
        this.finish('error', 'The microphone was disconnected, so the call was ended.', { sendEnd: true, kind: 'error' });
      });
    }
  }

  // -- socket in

  onText(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // not ours to fix; the protocol says ignore what we do not understand
    }
    if (msg === null || typeof msg !== 'object') return;
    // Once over, only late captions still matter (states and errors would repaint a
    // reset page), and not once a newer call owns the transcript.
    if (this.done && (msg.type !== 'transcript' || !this.isCurrent())) return;
    switch (msg.type) {
      case 'ready': return this.onReady(msg);
      case 'state': return view.agent(AGENT_LABEL[msg.state] ? msg.state : '');
      case 'transcript': return this.captions.update(msg, this.agentLabel);
      case 'interrupt': return this.clearPlayback();
      case 'error': return view.toast(`Server: ${msg.message || msg.code || 'error'}`);
      case 'ended': return this.onEnded(msg);
      default: return undefined;
    }
  }

  onReady(msg) {
    if (this.done) return;
    if (this.ready) { // back on the call after a drop or a move
      view.conn('connected');
      return;
    }
    this.ready = true;
    const maxFrameMs = Number(msg.max_frame_ms) || 200;
    this.nodes.playback.port.postMessage({ type: 'config', inputRate: Number(msg.sample_rate) || DEFAULT_AGENT_RATE });
    this.nodes.capture.port.postMessage({
      type: 'start',
      targetRate: Number(msg.input_sample_rate) || DEFAULT_INPUT_RATE,
      frameMs: Math.min(20, maxFrameMs),
    });
    this.ctx.resume().catch(() => {});
    view.conn('connected');
  }

  onAudio(buffer) {
    if (this.done || !this.nodes) return;
    this.nodes.playback.port.postMessage(buffer, [buffer]);
  }

  onEnded(msg) {
    const reason = String(msg.reason ?? '');
    const text = ENDED_TEXT[reason] ?? `The call ended (${reason || 'no reason given'}).`;
    const normal = NORMAL_ENDS.has(reason);
    // Let the agent's last words finish; the server closes the socket next.
    this.finish(normal ? 'ended' : 'error', text, { drain: true, kind: normal ? 'info' : 'error' });
  }

  onClose(event) {
    if (this.done) return; // we hung up, or `ended` already said why
    const text = CLOSE_TEXT[event.code] ?? `The connection closed (code ${event.code}). Press Talk to call again.`;
    this.finish(event.code === 1000 ? 'ended' : 'error', text, { drain: event.code === 1000, kind: event.code === 1000 ? 'info' : 'error' });
  }

  // -- audio in and out

  onMicFrame(msg) {
    if (msg.type !== 'frame' || this.done) return;
    view.level(msg.level);
    if (this.ready) this.socket.send(msg.pcm);
  }

  onPlaybackState(msg) {
    if (msg.type !== 'state') return;
    this.playing = msg.state === 'playing';
    if (this.playing) window.voxfleetPlayed = true; // for tests and diagnostics
    view.playback(msg.state);
    if (!this.playing && this.onIdle) this.onIdle();
  }

  clearPlayback() {
    this.nodes?.playback.port.postMessage({ type: 'clear' });
  }

  // -- ending

  /** The user pressed End (or left the page). */
  hangUp() {
    this.finish('ended', this.ready ? 'You ended the call.' : 'Call cancelled.', { sendEnd: true });
  }

  /** End the call once, whoever ended it: socket, microphone, audio and view. */
  finish(state, text, { sendEnd = false, drain = false, kind = 'info' } = {}) {
    if (this.done) return;
    this.done = true;
    this.abort.abort();
    if (sendEnd) this.socket?.sendText({ type: 'end' });
    this.socket?.close(1000, 'caller ended');
    this.releaseAudio(drain);
    view.conn(state);
    view.notice(text, kind);
    view.level(0);
  }

  /** Stop the microphone now; close the AudioContext now, or once playback drains. */
  async releaseAudio(drain) {
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    const { nodes, ctx } = this;
    if (nodes) {
      nodes.capture.port.postMessage({ type: 'stop' });
      nodes.source.disconnect();
    }
    if (!drain) this.clearPlayback();
    else if (this.playing) {
      await new Promise((resolve) => {
        this.onIdle = resolve;
        setTimeout(resolve, DRAIN_TIMEOUT_MS);
      });
    }
    if (ctx && ctx.state !== 'closed') await ctx.close().catch(() => {});
    if (this.isCurrent()) view.playback('idle'); // a newer call may own the page by now
  }
}
