// The call API and the browser's devices: create a call, open the microphone,
// build the audio graph, and make a socket URL the page may open.

const MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
};
export const INSECURE_TEXT = 'Calls need a secure page: open this site over https (or on localhost).';

// ---------------------------------------------------------------- API and devices

export class StartError extends Error {}

export async function fetchProfiles() {
  const res = await fetch('/api/profiles', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET /api/profiles: HTTP ${res.status}`);
  const body = await res.json();
  if (!Array.isArray(body?.profiles)) throw new Error('GET /api/profiles: no profiles list');
  return body;
}

/** POST /api/calls; throws a StartError carrying the server's own message. */
export async function createCall(profile, signal) {
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
  const joinable = typeof body?.media_url === 'string' || typeof body?.livekit?.token === 'string';
  if (!res.ok || !joinable) {
    const why = body?.error?.message ?? `the server answered ${res.status}`;
    throw new StartError(`Could not start the call: ${why}.`);
  }
  return body;
}

export async function openMicrophone() {
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
export function buildAudioGraph(ctx, stream) {
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
export function socketUrl(mediaUrl) {
  const url = new URL(mediaUrl, window.location.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  // An https page may not open ws:// (mixed content): that happens behind a TLS
  // proxy when the server does not know its public URL, and wss:// is the only hope.
  if (window.location.protocol === 'https:' && url.protocol === 'ws:') url.protocol = 'wss:';
  return url.href;
}
