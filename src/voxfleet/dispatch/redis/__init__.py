"""Dispatch on Redis: the room queue (a Stream with a consumer group), the room
directory (leases with fencing, conversation state, the set of live rooms) and
the agent registry. Lease and state writes are Lua scripts, so "check the fence,
then write" is atomic.

Keys: ``vf:queue`` (stream, group ``agents``), ``vf:rooms`` (hash room ->
profile), ``vf:room:{id}:lease`` ("agent|fence", PX ttl), ``:fence`` (counter),
``:state`` (JSON), ``:requeue`` (NX marker), ``:ended`` (tombstone of a call
that is over), ``vf:agents`` (set) and ``vf:agent:{id}`` (JSON, PX 3 heartbeats).

If Redis restarts empty (or a failover loses recent writes), an agent's next
renew or save finds its lease gone and no newer fence, and re-asserts both:
live rooms survive a Redis restart."""

from voxfleet.dispatch.redis.directory import RedisRoomDirectory
from voxfleet.dispatch.redis.queue import RedisRoomQueue
from voxfleet.dispatch.redis.registry import RedisAgentRegistry

__all__ = ["RedisAgentRegistry", "RedisRoomDirectory", "RedisRoomQueue"]
