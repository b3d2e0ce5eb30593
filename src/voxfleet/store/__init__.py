"""The store: calls and their turns in SQLite or PostgreSQL, via SQLAlchemy.

The API and the agents write a call's life and its turns through ``CallStore``;
the API reads them back. ``migrate`` brings the schema up to date at start-up.
"""

from voxfleet.store.db import create_engine, migrate, session_factory
from voxfleet.store.repository import CallRecord, CallStore

__all__ = ["CallRecord", "CallStore", "create_engine", "migrate", "session_factory"]
