"""The voice pipeline of one room: VAD -> endpointing -> STT -> LLM -> clause
chunking -> TTS -> paced playout, with speculation at pauses and barge-in."""
