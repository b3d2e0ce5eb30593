// The landing page client. It creates a call (POST /api/calls), opens the media
// socket, streams the microphone to it through capture-worklet.js and plays the
// agent's audio through playback-worklet.js, showing status and live captions.
// The wire format is docs/protocol.md; unknown message types and fields are ignored.

const MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
};
/** Rates assumed until `ready` says otherwise (docs/protocol.md). */
const DEFAULT_INPUT_RATE = 16000;
const DEFAULT_AGENT_RATE = 22050;
/**
 * Unsent bytes allowed on the socket (1 s of 16 kHz PCM16). Beyond that the
 * network is stalling; sending the backlog later would arrive as a burst the
 * server treats as a flood, and stale audio is useless in a live call anyway.
 */
const MAX_SOCKET_BACKLOG = 32000;
/** How long the agent's last words may keep playing after the call has ended. */
const DRAIN_TIMEOUT_MS = 4000;
const TOAST_MS = 6000;
const INSECURE_TEXT = 'Calls need a secure page: open this site over https (or on localhost).';

const ENDED_TEXT = {
  caller_ended: 'You ended the call.',
  caller_disconnected: 'The call was disconnected.',
  flood: 'Too much audio arrived at once, so the call was stopped. Press Talk to try again.',
  max_duration: 'The call reached its time limit.',
  agent_error: 'The agent ran into a problem and ended the call. Press Talk to try again.',
  no_agent: 'No agent is free right now. Please try again in a moment.',
  never_connected: 'The call never connected. Press Talk to try again.',
  server_shutdown: 'The server is restarting. Please call again in a moment.',
};
/** End reasons that are the normal end of a conversation rather than a failure. */
const NORMAL_ENDS = new Set(['caller_ended', 'caller_disconnected', 'max_duration']);

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
  4409: 'This call has already ended or is open somewhere else. Press Talk for a new one.',
  4429: 'Too much audio was sent at once, so the call was stopped. Press Talk to try again.',
  4503: 'No agent is free right now. Please try again in a moment.',
};

const CONN_LABEL = {
  idle: 'Idle', connecting: 'Connecting…', connected: 'Connected', ended: 'Call ended', error: 'Error',
};
const AGENT_LABEL = {
  queued: 'Waiting for a free agent…', listening: 'Listening', thinking: 'Thinking…', speaking: 'Speaking',
};

const $ = (id) => document.getElementById(id);
const els = {
  talk: $('talk'), talkLabel: $('talk-label'), profileField: $('profile-field'), profile: $('profile'),
  connPill: $('conn-pill'), agentPill: $('agent-pill'), notice: $('notice'), toast: $('toast'),
  captions: $('captions'),
};

/** Profile name -> title, filled from GET /api/profiles. */
const profileTitles = new Map();

// ---------------------------------------------------------------- view

/** The page's side of a call; a Call reports to it and never touches the DOM itself. */
const view = {
  conn(state) {
    document.body.dataset.connState = state;
    setPill(els.connPill, state, CONN_LABEL[state] ?? state);
    const live = state === 'connecting' || state === 'connected';
    els.talk.dataset.mode = live ? 'end' : 'talk';
    els.talkLabel.textContent = live ? 'End' : 'Talk';
    els.talk.setAttribute('aria-label', live ? 'End the call' : 'Talk: start a call');
    els.profile.disabled = live;
    if (!live) this.agent('');
  },

  agent(state) {
    document.body.dataset.agentState = state;
    els.agentPill.hidden = !state;
    setPill(els.agentPill, state, AGENT_LABEL[state] ?? state);
  },

  playback(state) {
    document.body.dataset.playback = state;
  },

  /** Microphone loudness 0..1, drawn as a ring around the button so people see they are heard. */
  level(rms) {
    const shown = Math.min(1, Math.sqrt(rms) * 2.5);
    els.talk.style.setProperty('--level', shown.toFixed(3));
  },

  notice(text, kind = 'info') {
    els.notice.hidden = !text;
    els.notice.textContent = text;
    els.notice.dataset.kind = kind;
  },

  /** A short-lived, unobtrusive line; `toast('')` hides it. */
  toast(text) {
    els.toast.textContent = text;
    els.toast.hidden = !text;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { els.toast.hidden = true; }, TOAST_MS);
  },
};

function setPill(pill, state, text) {
  pill.dataset.state = state;
  pill.querySelector('.pill-text').textContent = text;
}

// ---------------------------------------------------------------- captions

/** The scrolling transcript: one <li> per turn, keyed by role and `seq`. */
class Captions {
  constructor(list) {
    this.list = list;
    this.turns = new Map();
  }

  clear() {
    this.list.replaceChildren();
    this.turns.clear();
  }

  /** Apply one `transcript` message; later texts of the same turn replace earlier ones. */
  update(msg, agentLabel) {
    const { role, seq } = msg;
    if ((role !== 'user' && role !== 'agent') || typeof seq !== 'number') return;
    const key = `${role}:${seq}`;
    const text = typeof msg.text === 'string' ? msg.text.trim() : '';
    const final = msg.final === true;
    const interrupted = msg.interrupted === true;
    let item = this.turns.get(key);
    // A late interim result must not reopen a turn that is already final.
    if (item && item.dataset.final === 'true' && !final) return;
    if (!text && !interrupted) {
      if (final && item) this.remove(key, item); // the turn came to nothing (noise, a cough)
      return;
    }
    const stick = this.atBottom();
    if (!item) {
      item = this.create(role, seq, role === 'user' ? 'You' : agentLabel);
      this.turns.set(key, item);
      this.insert(item, seq);
    }
    item.querySelector('.caption-text').textContent = text;
    item.dataset.final = String(final);
    item.setAttribute('aria-busy', String(!final)); // let screen readers wait for the settled text
    item.querySelector('.caption-tag').hidden = !interrupted;
    item.classList.toggle('is-interrupted', interrupted);
    if (stick) this.list.scrollTop = this.list.scrollHeight;
  }

  create(role, seq, label) {
    const item = document.createElement('li');
    item.className = 'caption';
    item.dataset.role = role;
    item.dataset.seq = String(seq);
    item.dataset.final = 'false';
    const who = document.createElement('span');
    who.className = 'caption-who';
    who.textContent = label;
    const tag = document.createElement('span');
    tag.className = 'caption-tag';
    tag.textContent = 'interrupted';
    tag.hidden = true;
    const text = document.createElement('p');
    text.className = 'caption-text';
    item.append(who, tag, text);
    return item;
  }

  /** Keep turns in `seq` order even if a caption for an earlier turn arrives late. */
  insert(item, seq) {
    const later = [...this.list.children].find((li) => Number(li.dataset.seq) > seq);
    this.list.insertBefore(item, later ?? null);
  }

  remove(key, item) {
    item.remove();
    this.turns.delete(key);
  }

  /** Follow new captions only if the reader has not scrolled up to read back. */
  atBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.list;
    return scrollHeight - scrollTop - clientHeight < 48;
  }
}

// ---------------------------------------------------------------- API and devices

class StartError extends Error {}

async function fetchProfiles() {
  const res = await fetch('/api/profiles', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET /api/profiles: HTTP ${res.status}`);
  const body = await res.json();
  if (!Array.isArray(body?.profiles)) throw new Error('GET /api/profiles: no profiles list');
  return body;
}

/** POST /api/calls; throws a StartError carrying the server's own message. */
async function createCall(profile, signal) {
  let res;
  try {
    res = await fetch('/api/calls', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(profile ? { profile } : {}),
      signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new StartError("Can't reach the server. Check your connection and press Talk again.");
  }
  const body = await res.json().catch(() => null);
  if (!res.ok || typeof body?.media_url !== 'string') {
    const why = body?.error?.message ?? `the server answered ${res.status}`;
    throw new StartError(`Could not start the call: ${why}.`);
  }
  return body;
}

async function openMicrophone() {
  try {
    return await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
  } catch (err) {
    throw new StartError(micErrorText(err));
  }
}

function micErrorText(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone access is blocked. Allow it for this site in your browser settings, then press Talk again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone was found. Connect one and press Talk again.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The microphone could not be started; another app may be using it.';
    default:
      return `The microphone could not be opened (${err?.message || err}).`;
  }
}

/** Mic -> capture worklet, and playback worklet -> speakers, in one AudioContext. */
function buildAudioGraph(ctx, stream) {
  const source = ctx.createMediaStreamSource(stream);
  const capture = new AudioWorkletNode(ctx, 'capture-processor', {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
    // Let the browser downmix a stereo mic to mono before the worklet sees it.
    channelCount: 1, channelCountMode: 'explicit', channelInterpretation: 'speakers',
  });
  source.connect(capture);
  // The capture node only writes silence, but a path to the destination guarantees
  // every browser keeps calling its process().
  capture.connect(ctx.destination);
  const playback = new AudioWorkletNode(ctx, 'playback-processor', {
    numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
  });
  playback.connect(ctx.destination);
  return { source, capture, playback };
}

/** The media_url as a WebSocket URL this page may actually open. */
function socketUrl(mediaUrl) {
  const url = new URL(mediaUrl, window.location.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  // An https page may not open ws:// (mixed content): that happens behind a TLS
  // proxy when the server does not know its public URL, and wss:// is the only hope.
  if (window.location.protocol === 'https:' && url.protocol === 'ws:') url.protocol = 'wss:';
  return url.href;
}

// ---------------------------------------------------------------- the call

/** One call, from the Talk press to the end; a new Talk press makes a new Call. */
class Call {
  constructor(captions) {
    this.captions = captions;
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
      this.openSocket(call.media_url);
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

  openSocket(mediaUrl) {
    const ws = new WebSocket(socketUrl(mediaUrl));
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) => (typeof e.data === 'string' ? this.onText(e.data) : this.onAudio(e.data));
    ws.onclose = (e) => this.onClose(e);
    this.ws = ws;
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
    if (this.done && (msg.type !== 'transcript' || current !== this)) return;
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
    if (this.ready || this.done) return;
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
    const ws = this.ws;
    if (!this.ready || !ws || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_SOCKET_BACKLOG) return;
    ws.send(msg.pcm);
  }

  onPlaybackState(msg) {
    if (msg.type !== 'state') return;
    this.playing = msg.state === 'playing';
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
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && sendEnd) ws.send(JSON.stringify({ type: 'end' }));
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'caller ended');
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
    if (current === this) view.playback('idle'); // a newer call may own the page by now
  }
}

// ---------------------------------------------------------------- wiring

const captions = new Captions(els.captions);
let current = null;

function onTalk() {
  if (current && !current.done) {
    current.hangUp();
    return;
  }
  view.notice('');
  view.toast('');
  captions.clear();
  current = new Call(captions);
  current.start(els.profileField.hidden ? '' : els.profile.value);
}

async function loadProfiles() {
  try {
    const { profiles, default: fallback } = await fetchProfiles();
    const options = profiles
      .filter((p) => typeof p?.name === 'string')
      .map((p) => {
        profileTitles.set(p.name, p.title || p.name);
        return new Option(p.title || p.name, p.name, false, p.name === fallback);
      });
    if (options.length === 0) return;
    els.profile.replaceChildren(...options);
    els.profileField.hidden = false;
  } catch {
    // Calls still work without the list: the server then picks its default profile.
    els.profileField.hidden = true;
  }
}

els.talk.addEventListener('click', onTalk);
// Leaving the page hangs up properly, so the call is recorded as ended by the caller.
window.addEventListener('pagehide', () => current?.hangUp());
view.conn('idle');
loadProfiles();
