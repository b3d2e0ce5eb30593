// Microphone capture, running on the audio thread: takes the mic at the
// AudioContext's rate (usually 44.1 or 48 kHz), low-passes and resamples it to
// the server's input rate (16 kHz), and posts 20 ms PCM16LE frames to app.js,
// which sends them on the media socket.

/** Output rate used until the server's `ready` says otherwise. */
const DEFAULT_TARGET_RATE = 16000;
/** Frame length unless `start` says otherwise: 20 ms is what docs/protocol.md recommends. */
const FRAME_MS = 20;

/**
 * Windowed-sinc (Hamming) low-pass taps, normalised to unity gain at DC.
 * The cutoff sits just under the output Nyquist so speech up to ~6.5 kHz
 * survives while everything that would fold back (aliasing) is cut.
 */
function designLowPass(inRate, outRate) {
  if (inRate <= outRate) return new Float32Array([1]); // upsampling: nothing can alias
  const cutoff = 0.43 * outRate; // Hz; leaves room for the transition band below out Nyquist
  const transition = 0.14 * outRate; // Hz; Hamming's transition is about 3.3 / N of inRate
  const n = Math.ceil((3.3 * inRate) / transition) | 1; // odd: symmetric, integer delay
  const fc = cutoff / inRate;
  const mid = (n - 1) / 2;
  const taps = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const window = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (n - 1));
    taps[i] = sinc * window;
    sum += taps[i];
  }
  for (let i = 0; i < n; i++) taps[i] /= sum;
  return taps;
}

/**
 * Streaming resampler: FIR low-pass at the input rate, then linear interpolation
 * at the output positions. After the low-pass the signal is heavily oversampled,
 * so linear interpolation adds little error. Works for any ratio (48000/16000 = 3,
 * 44100/16000 = 2.75625, ...).
 */
class Resampler {
  constructor(inRate, outRate) {
    this.taps = designLowPass(inRate, outRate);
    this.history = new Float32Array(this.taps.length * 2); // doubled: no wrap-around in the dot product
    this.head = 0;
    this.step = inRate / outRate; // input samples per output sample
    this.t = 1; // next output position, in input samples after `prev`
    this.prev = 0;
  }

  /** Feed input samples; calls `emit(sample)` for every output sample due. */
  push(input, emit) {
    const { taps, history } = this;
    const n = taps.length;
    for (let i = 0; i < input.length; i++) {
      // Write each sample twice so history[head .. head+n) is always contiguous.
      history[this.head] = input[i];
      history[this.head + n] = input[i];
      this.head = (this.head + 1) % n;
      let curr = 0;
      for (let k = 0; k < n; k++) curr += taps[k] * history[this.head + k];
      while (this.t <= 1) {
        emit(this.prev + (curr - this.prev) * this.t);
        this.t += this.step;
      }
      this.t -= 1;
      this.prev = curr;
    }
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = null; // null until `start`: nothing is posted before the socket is ready
    this.frame = null;
    this.view = null;
    this.filled = 0;
    this.sumSquares = 0;
    this.stopped = false;
    this.emit = (sample) => this.addSample(sample);
    this.port.onmessage = (event) => this.onCommand(event.data);
  }

  onCommand(msg) {
    if (msg.type === 'start') {
      const rate = msg.targetRate || DEFAULT_TARGET_RATE;
      // `sampleRate` is the AudioContext rate, a global of the worklet scope.
      this.resampler = new Resampler(sampleRate, rate);
      this.frameSamples = Math.round((rate * (msg.frameMs || FRAME_MS)) / 1000);
      this.newFrame();
    } else if (msg.type === 'stop') {
      this.stopped = true;
    }
  }

  newFrame() {
    this.frame = new ArrayBuffer(this.frameSamples * 2);
    this.view = new DataView(this.frame);
    this.filled = 0;
    this.sumSquares = 0;
  }

  addSample(sample) {
    const s = Math.max(-1, Math.min(1, sample));
    // DataView with littleEndian=true: the wire format is PCM16LE whatever the CPU.
    this.view.setInt16(this.filled * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    this.sumSquares += s * s;
    this.filled += 1;
    if (this.filled === this.frameSamples) {
      const level = Math.sqrt(this.sumSquares / this.frameSamples);
      // Transfer, not copy: the buffer is handed to the main thread as is.
      this.port.postMessage({ type: 'frame', pcm: this.frame, level }, [this.frame]);
      this.newFrame();
    }
  }

  process(inputs) {
    if (this.stopped) return false;
    // The node is created with channelCount 1 / explicit, so channel 0 is the mono downmix.
    // An input with no channels means the mic track ended; just wait.
    const channel = inputs[0] && inputs[0][0];
    if (this.resampler && channel) this.resampler.push(channel, this.emit);
    return true; // outputs stay zero-filled: the node only needs to be pulled
  }
}

registerProcessor('capture-processor', CaptureProcessor);
