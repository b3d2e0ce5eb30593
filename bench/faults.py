"""What a caller hears when a provider fails: for each stage (speech-to-text,
LLM, text-to-speech) served by a hosted endpoint in a fallback chain (the
openai SDK against the local stand-in of tests/support/openai_standin.py, then
the scripted provider), every turn injects one fault and measures, at the
caller's client:

- ``hang_to_heard``: from the moment the endpoint got the request it then
  hangs on (or fails) to the first frame of reply audio the caller receives;
- ``speech_end_to_heard``: from the end of the caller's speech to that frame;
- whether the turn was answered (by the next provider), with the apology first.

A healthy turn of the same call is the baseline. Faults: ``hang`` (accepts the
request, sends keep-alive bytes, never a token or audio: dead air), ``500``
and ``429`` past the endpoint's attempts, ``break`` (the stream is cut after
three words). The endpoint's deadlines are the defaults of docs/providers.md
(first token / first audio / transcription: 1 s).

    ./vf bench faults [--turns 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop
from tests.audio import silence, tone
from tests.support.calls import final
from tests.support.openai_standin import standin
from tests.support.server import app_server

from bench.common import machine, percentile
from voxfleet.client import CallClient

STAGES = {"stt": "transcription", "llm": "chat", "tts": "speech"}
FAULTS = ("hang", "500", "429", "break")


async def one_case(stage: str, fault: str, turns: int, work: Path) -> dict[str, Any]:
    async with standin() as stand:
        endpoints = work / f"endpoints-{stage}-{fault}.toml"
        endpoints.write_text(
            f'[endpoint.hosted]\nurl = "{stand.url}"\nauth = "none"\n'
            'llm = "m"\nstt = "w"\ntts = "t"\n'
        )
        async with app_server(work, endpoints_file=endpoints, **{stage: "hosted,scripted"}) as (
            base,
            _runtime,
        ):
            call = CallClient(base)
            await call.start()
            await call.wait_for(final("agent", 0), timeout=20)
            offset = time.time() - time.monotonic()
            seq = 1
            baseline: list[float] = []
            hang_to_heard: list[float] = []
            end_to_heard: list[float] = []
            answered = apologised = 0
            for i in range(turns * 2):
                faulty = i % 2 == 1
                if faulty:
                    stand.fail(STAGES[stage], fault, times=1 if fault in ("hang", "break") else 2)
                requests_before = len(stand.requests(STAGES[stage]))
                heard_from = len(call.audio)
                await call.send_audio(tone(1.0))
                speech_end = time.monotonic()
                await call.send_audio(silence(0.6), realtime=False)
                reply = await call.wait_for(final("agent", seq + 1), timeout=30)
                seq += 2
                first_audio = next(t for t, _ in call.audio[heard_from:] if t >= speech_end - 0.5)
                if not faulty:
                    baseline.append(first_audio - speech_end)
                    continue
                failing = stand.requests(STAGES[stage])[requests_before]
                hang_to_heard.append(first_audio - (failing.at - offset))
                end_to_heard.append(first_audio - speech_end)
                # Answered: the next provider spoke after the apology (an LLM
                # stream cut mid-reply is continued, so it starts mid-sentence).
                rest = reply["text"].removeprefix("Sorry, one moment.").strip()
                answered += bool(rest) and not rest.startswith("Sorry, I can't answer")
                apologised += reply["text"].startswith("Sorry, one moment.")
                await asyncio.sleep(0.5)
            await call.end()
            await call.close()

    def ms(values: list[float], p: float) -> float:
        return round(percentile(values, p) * 1000, 1)

    return {
        "stage": stage,
        "fault": fault,
        "turns": turns,
        "answered": answered,
        "apology_first": apologised,
        "hang_to_heard_ms": {"p50": ms(hang_to_heard, 50), "max": ms(hang_to_heard, 100)},
        "speech_end_to_heard_ms": {"p50": ms(end_to_heard, 50), "max": ms(end_to_heard, 100)},
        "healthy_speech_end_to_heard_ms": {"p50": ms(baseline, 50), "max": ms(baseline, 100)},
    }


async def main(turns: int, stages: list[str], faults: list[str]) -> None:
    results = []
    with tempfile.TemporaryDirectory(prefix="voxfleet-faults-") as tmp:
        for stage in stages:
            for fault in faults:
                if stage == "stt" and fault == "break":
                    continue  # a transcription is one JSON answer: nothing to break mid-way
                work = Path(tmp) / f"{stage}-{fault}"
                work.mkdir()
                results.append(await one_case(stage, fault, turns, work))
                print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"benchmark": "faults", "machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=5, help="faulty turns per case")
    parser.add_argument("--stages", default="stt,llm,tts")
    parser.add_argument("--faults", default=",".join(FAULTS))
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(args.turns, args.stages.split(","), args.faults.split(",")))
