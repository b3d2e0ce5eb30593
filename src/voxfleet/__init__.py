"""voxfleet: a self-hostable voice-AI agent platform."""

__version__ = "0.1.0"
