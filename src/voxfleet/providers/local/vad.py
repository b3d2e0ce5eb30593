"""Silero VAD v6, the ONNX model that ships inside faster-whisper, on onnxruntime.

One inference session is shared; each stream carries its own recurrent state and
the 64-sample context the model expects before each 512-sample window. A window
takes well under a millisecond, so it runs inline on the event loop: a thread
hop would cost more than the inference."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from faster_whisper.vad import get_assets_path

from voxfleet.audio import Float32Array
from voxfleet.providers.base import VAD, VADStream

WINDOW = 512
CONTEXT = 64


class _SileroStream(VADStream):
    window = WINDOW

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probability(self, window: Float32Array) -> float:
        batch = np.concatenate([self._context, window])[None, :]
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = window[-CONTEXT:]
        return float(np.asarray(out).ravel()[0])

    def skip(self, window: Float32Array) -> None:
        self._context = window[-CONTEXT:]


class SileroVAD(VAD):
    name = "silero-v6"

    def __init__(self) -> None:
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            os.path.join(get_assets_path(), "silero_vad_v6.onnx"),
            sess_options=opts,
            providers=["CPUExecutionProvider"],
        )

    def stream(self) -> VADStream:
        return _SileroStream(self._session)
