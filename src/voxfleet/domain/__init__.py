"""The pure core: calls, turns, conversation state and profiles.

Nothing here imports a web framework, a database driver or a Redis client, so
the same objects serve the in-process runtime and the distributed one.
"""
