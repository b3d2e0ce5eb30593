"""Speech and language providers: VAD, STT, LLM, TTS. Each kind has one small base
class that owns timing, error mapping and metrics; a provider implements one
method. ``local`` runs models shipped in PyPI packages; ``scripted`` has set
timings for fast tests."""
