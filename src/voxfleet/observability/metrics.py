"""Prometheus metrics of every role, registered once per process.

Names are stable: dashboards, alert rules (deploy/observability) and the
autoscaler read them; docs/observability.md lists them. Labels stay bounded:
kinds, provider names, stages and reasons, never a call id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from voxfleet.domain.calls import LatencyMarks

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

PROVIDER_SECONDS = Histogram(
    "voxfleet_provider_seconds",
    "Time a provider call took (llm_first_token: to the first token).",
    ["kind", "provider"],
    buckets=LATENCY_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "voxfleet_provider_errors_total",
    "Provider attempts that failed, by error code (provider_timeout: no first token, "
    "transcript or audio in time; provider_unavailable: refused, 5xx, 429; provider: "
    "anything else, a broken stream or silent audio included).",
    ["kind", "provider", "code"],
)
PROVIDER_FALLBACKS = Counter(
    "voxfleet_provider_fallbacks_total",
    "Requests a fallback chain moved from one provider to the next.",
    ["kind", "from_provider", "to_provider"],
)
PROVIDER_BREAKER_STATE = Gauge(
    "voxfleet_provider_breaker_state",
    "Circuit breaker of a provider in a chain: 0 closed, 1 half-open (probing), 2 open.",
    ["kind", "provider"],
)
PROVIDER_BREAKER_CHANGES = Counter(
    "voxfleet_provider_breaker_changes_total",
    "Circuit breaker changes, by the state entered.",
    ["kind", "provider", "state"],
)
APOLOGIES = Counter(
    "voxfleet_apologies_total",
    "Replies in which the agent apologised for a provider fault (pre-synthesized audio).",
)
VOICE_TO_VOICE_SECONDS = Histogram(
    "voxfleet_voice_to_voice_seconds",
    "End of caller speech to first reply audio frame sent.",
    buckets=LATENCY_BUCKETS,
)
TURN_STAGE_SECONDS = Histogram(
    "voxfleet_turn_stage_seconds",
    "One stage of a reply to the caller, each from the mark before it: end_of_turn "
    "(end of speech to turn decided), stt (end of speech to transcript; 0 when a "
    "speculative transcript was ready), llm_first_token (transcript to first token), "
    "tts_first_audio (first token to first synthesized audio).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
MODEL_QUEUE_SECONDS = Histogram(
    "voxfleet_model_queue_seconds",
    "Time a local model job (a transcription, one token, one clause's synthesis) waited "
    "for the agent's model scheduler, by urgency (critical, tail, background).",
    ["level"],
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)
MODEL_BUSY_SECONDS = Counter(
    "voxfleet_model_busy_seconds_total",
    "Time the agent's local models spent working, by model (stt, llm, tts) and urgency: "
    "its rate over the number of model workers is the share of them in use.",
    ["kind", "level"],
)
MODEL_CPU_SECONDS = Counter(
    "voxfleet_model_cpu_seconds_total",
    "CPU time of the agent's local model jobs (their worker thread's), by model.",
    ["kind"],
)
LLM_TOKENS = Counter(
    "voxfleet_llm_tokens_total",
    "Tokens the agent's local LLM generated (pieces of text), for its CPU per token.",
)
PAUSE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
GC_PAUSE_SECONDS = Histogram(
    "voxfleet_gc_pause_seconds",
    "Time the garbage collector held the process, by generation collected.",
    ["generation"],
    buckets=PAUSE_BUCKETS,
)
LOOP_LAG_SECONDS = Histogram(
    "voxfleet_event_loop_lag_seconds",
    "How late a timer on the event loop fired: time the loop was held by other work "
    "(its _sum is the seconds the loop was blocked).",
    buckets=PAUSE_BUCKETS,
)
CALLS_STARTED = Counter("voxfleet_calls_created_total", "Calls created through the API.")
CALLS_REFUSED = Counter(
    "voxfleet_calls_refused_total",
    "Call creations refused: rate_limited (429) or queue_full (503).",
    ["reason"],
)
RATE_LIMIT_ERRORS = Counter(
    "voxfleet_rate_limit_errors_total",
    "Admission checks that could not be made (storage unreachable) and let the call through.",
    ["check"],
)
LIVEKIT_WEBHOOKS = Counter(
    "voxfleet_livekit_webhooks_total",
    "LiveKit webhooks: taken (call_active, call_ended, ignored) or refused (its error code).",
    ["outcome"],
)
HTTP_REFUSED = Counter(
    "voxfleet_http_refused_total",
    "Requests refused before any route: body_too_large (413) or origin (socket handshake).",
    ["reason"],
)
CALLS_ENDED = Counter("voxfleet_calls_ended_total", "Calls ended, by reason.", ["reason"])
ACTIVE_ROOMS = Gauge("voxfleet_agent_active_rooms", "Rooms this agent process serves now.")
AGENT_CAPACITY = Gauge("voxfleet_agent_capacity", "Rooms this agent process serves at most.")
EDGE_SOCKETS = Gauge("voxfleet_edge_sockets", "Caller sockets open on this edge.")
EDGE_FRAMES = Counter(
    "voxfleet_edge_frames_total", "Frames relayed by the edge.", ["direction", "kind"]
)
# Counted on every 20 ms frame: the children, looked up once.
EDGE_AUDIO_UP = EDGE_FRAMES.labels("up", "audio")
EDGE_AUDIO_DOWN = EDGE_FRAMES.labels("down", "audio")
EDGE_BAD_FRAMES = Counter(
    "voxfleet_edge_rejected_frames_total", "Client frames rejected, by error code.", ["code"]
)
BARGE_INS = Counter("voxfleet_barge_ins_total", "Agent replies cut short by the caller.")
DISPATCH_SECONDS = Histogram(
    "voxfleet_dispatch_seconds",
    "Room queued to agent attached.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
QUEUE_DEPTH = Gauge("voxfleet_queue_depth", "Rooms waiting for an agent.")
FAILOVERS = Counter(
    "voxfleet_failovers_total",
    "Orphaned rooms (their lease lapsed: the agent died) re-queued to another agent.",
)
HANDOVERS = Counter("voxfleet_handovers_total", "Rooms taken over from a draining agent.")
DRAINS = Counter("voxfleet_drains_total", "Drains started (SIGTERM, scale-down).")
DESIRED_AGENTS = Gauge("voxfleet_desired_agents", "Agents the current room demand needs.")
LIVE_AGENTS = Gauge("voxfleet_live_agents", "Agents heard from recently.")
ACTIVE_ROOMS_TOTAL = Gauge("voxfleet_active_rooms", "Rooms being served, all agents.")


def _since(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else max(0.0, later - earlier)


def observe_turn(marks: LatencyMarks) -> None:
    """Count one reply's stages (once per turn, never per frame). Replies that
    answer no speech (the greeting, a resumed turn) have no end of speech and
    are not counted."""
    if marks.speech_end is None:
        return
    stages = (
        ("end_of_turn", _since(marks.turn_decided, marks.speech_end)),
        ("stt", _since(marks.stt_done, marks.speech_end)),
        ("llm_first_token", _since(marks.llm_first_token, marks.stt_done)),
        ("tts_first_audio", _since(marks.tts_first_audio, marks.llm_first_token)),
    )
    for stage, seconds in stages:
        if seconds is not None:
            TURN_STAGE_SECONDS.labels(stage).observe(seconds)
    if marks.first_audio_sent is not None:
        VOICE_TO_VOICE_SECONDS.observe(marks.first_audio_sent - marks.speech_end)


LIVE_DASHBOARDS = Gauge("voxfleet_live_dashboards", "Live view sockets open on this monitor.")
LIVE_EVENTS = Counter(
    "voxfleet_live_events_total",
    "Room events on the live view: published (by this agent), dropped (not published: "
    "buffer full or Redis down), received (by this monitor, fanned out to its dashboards).",
    ["outcome"],
)
LIVE_RESYNCS = Counter(
    "voxfleet_live_resyncs_total",
    "Dashboards too slow for the live view: their backlog dropped, a fresh snapshot sent.",
)
