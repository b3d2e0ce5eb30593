// Agent audio playback, running on the audio thread: a small jitter buffer fed
// with the PCM16LE frames of the media socket (at `ready.sample_rate`, e.g.
// 22050 Hz), resampled to the AudioContext rate. `clear` empties it at once,
// which is how an interrupt stops the agent mid-word.

/** Audio buffered before playback starts, to ride out network jitter. */
const PREBUFFER_MS = 60;
/** Start anyway if this long passes without new audio (the tail of a reply). */
const FLUSH_AFTER_MS = 80;
/** Upper bound on queued audio; the server paces at real time, so this is only a guard. */
const CAPACITY_SECONDS = 30;
/** Time constant of the fade applied when audio stops abruptly, to avoid a click. */
const FADE_SECONDS = 0.002;

/** Windowed-sinc (Hamming) low-pass, only needed when the agent rate is above ours. */
function designLowPass(inRate, outRate) {
  if (inRate <= outRate) return new Float32Array([1]);
  const fc = (0.43 * outRate) / inRate;
  const n = Math.ceil((3.3 * inRate) / (0.14 * outRate)) | 1;
  const mid = (n - 1) / 2;
  const taps = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    taps[i] = sinc * (0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (n - 1)));
    sum += taps[i];
  }
  return taps.map((t) => t / sum);
}

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.playing = false;
    this.configure(sampleRate); // real rate arrives with `config` once the socket is ready
    this.fadeFactor = Math.exp(-1 / (FADE_SECONDS * sampleRate));
    this.last = 0; // last sample written, faded out on underrun or clear
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  configure(inRate) {
    this.inRate = inRate;
    this.step = inRate / sampleRate; // input samples consumed per output sample
    this.taps = designLowPass(inRate, sampleRate);
    this.history = new Float32Array(this.taps.length * 2);
    this.head = 0;
    this.ring = new Float32Array(Math.ceil(inRate * CAPACITY_SECONDS));
    this.prebuffer = Math.ceil((inRate * PREBUFFER_MS) / 1000);
    this.reset();
  }

  /** Drop everything queued; the next audio waits for the prebuffer again. */
  reset() {
    this.read = 0;
    this.write = 0;
    this.available = 0;
    this.frac = 0;
    this.lastPushAt = currentTime;
    this.setPlaying(false);
  }

  onMessage(msg) {
    if (msg instanceof ArrayBuffer) this.push(msg);
    else if (msg.type === 'config') this.configure(msg.inputRate);
    else if (msg.type === 'clear') this.reset();
  }

  /** Queue one PCM16LE frame (converted and, if needed, low-passed). */
  push(buffer) {
    const view = new DataView(buffer);
    const count = buffer.byteLength >> 1; // a stray odd byte is not a whole sample
    const { ring, taps, history } = this;
    const n = taps.length;
    for (let i = 0; i < count; i++) {
      const x = view.getInt16(i * 2, true) / 0x8000;
      let y = x;
      if (n > 1) {
        history[this.head] = x;
        history[this.head + n] = x;
        this.head = (this.head + 1) % n;
        y = 0;
        for (let k = 0; k < n; k++) y += taps[k] * history[this.head + k];
      }
      if (this.available === ring.length) {
        // Full: drop the oldest sample rather than the newest, to stay near real time.
        this.read = (this.read + 1) % ring.length;
        this.available -= 1;
      }
      ring[this.write] = y;
      this.write = (this.write + 1) % ring.length;
      this.available += 1;
    }
    this.lastPushAt = currentTime;
  }

  setPlaying(playing) {
    if (this.playing === playing) return;
    this.playing = playing;
    this.port.postMessage({ type: 'state', state: playing ? 'playing' : 'idle' });
  }

  /** Whether the jitter buffer holds enough to start (or has waited long enough). */
  ready() {
    if (this.available >= this.prebuffer) return true;
    return this.available >= 2 && currentTime - this.lastPushAt >= FLUSH_AFTER_MS / 1000;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.ready()) this.setPlaying(true);
    const { ring } = this;
    const size = ring.length;
    for (let i = 0; i < out.length; i++) {
      if (this.playing && this.available >= 2) {
        // Linear interpolation between the two input samples around the read position.
        const a = ring[this.read];
        const b = ring[(this.read + 1) % size];
        this.last = a + (b - a) * this.frac;
        this.frac += this.step;
        while (this.frac >= 1 && this.available > 0) {
          this.frac -= 1;
          this.read = (this.read + 1) % size;
          this.available -= 1;
        }
        if (this.available === 0) this.frac = 0; // ran dry mid-step: restart cleanly
      } else {
        // Underrun or cleared: silence, reached through a very short fade.
        if (this.playing) this.setPlaying(false);
        this.last *= this.fadeFactor;
      }
      out[i] = this.last;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}

registerProcessor('playback-processor', PlaybackProcessor);
