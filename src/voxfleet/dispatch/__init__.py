"""Dispatch: which agent serves which room. A queue of rooms waiting for an agent
and the store of each room's conversation state, behind interfaces that the
in-process runtime and the Redis runtime both implement."""
