"""Logs and metrics shared by every role."""
