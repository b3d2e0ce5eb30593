// The latency chart: uPlot (vendored, MIT) over GET /api/latency, redrawn
// every 15 seconds.

import uPlot from '/monitor/vendor/uplot.esm.js';
import { latency } from '/monitor/api.js';

const SERIES = [
  { label: 'STT', key: 'stt_ms', stroke: '#1f77b4' },
  { label: 'LLM', key: 'llm_ms', stroke: '#ff7f0e' },
  { label: 'TTS', key: 'tts_ms', stroke: '#2ca02c' },
  { label: 'total', key: 'total_ms', stroke: '#d62728' },
];

export class LatencyChart {
  constructor(element, note) {
    this.element = element;
    this.note = note;
    this.plot = new uPlot(
      {
        width: Math.max(320, element.clientWidth || 720),
        height: 240,
        series: [{}, ...SERIES.map((s) => ({ label: s.label, stroke: s.stroke, spanGaps: true }))],
        axes: [{}, { label: 'ms' }],
      },
      [[], ...SERIES.map(() => [])],
      element,
    );
    this.timer = null;
  }

  async refresh() {
    try {
      const body = await latency(10);
      const replies = body.replies;
      this.plot.setData([replies.map((r) => r.at), ...SERIES.map((s) => replies.map((r) => r[s.key]))]);
      this.note.textContent = replies.length ? `${replies.length} replies` : 'No replies in the last 10 minutes.';
    } catch (err) {
      this.note.textContent = `Latency unavailable: ${err.message}`;
    }
  }

  start() {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), 15000);
  }

  stop() {
    clearInterval(this.timer);
  }
}
