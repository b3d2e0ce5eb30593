"""The Lua scripts of the room directory: each checks, then writes, atomically.
A lease's value is "agent|fence"; every new holder gets the next fence, and
writes carry it, so a holder that lost the lease cannot overwrite its successor."""

from __future__ import annotations

# Every script first checks the room's tombstone (KEYS[4]): -1 means the call is over.
ENDED_CHECK = """
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
"""

# Is the lease ours to (re-)assert? Yes when it holds our value; or when it is gone
# (expired, or Redis lost it in a restart) and nobody took a newer fence since; or
# when it names us with an older fence (a failover that lost our latest writes).
# KEYS: lease, fence. ARGV[1]: our value "agent|fence", ARGV[2]: ttl_ms, ARGV[3]: our fence.
OURS = """
local function ours()
  local cur = redis.call('GET', KEYS[1])
  if cur == ARGV[1] then return 1 end
  local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
  if newest > tonumber(ARGV[3]) then return 0 end
  if cur then
    local holder, fence = string.match(cur, '^(.*)|(%d+)$')
    local me = string.match(ARGV[1], '^(.*)|%d+$')
    if holder ~= me or tonumber(fence) > tonumber(ARGV[3]) then return 0 end
  end
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
"""

# KEYS: lease, fence, rooms, ended. ARGV: room, agent, takeover_fence, ttl_ms, profile
ACQUIRE = (
    ENDED_CHECK
    + """
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder, fence = string.match(cur, '^(.*)|(%d+)$')
  if holder ~= ARGV[2] and fence ~= ARGV[3] then return false end
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. fence, 'PX', ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
return fence
"""
)

# KEYS: lease, fence, rooms, ended. ARGV: value, ttl_ms, fence, room, profile
# 1: renewed; 2: re-asserted; 0: the lease is not ours.
RENEW = (
    ENDED_CHECK
    + OURS
    + """
local result = ours()
if result == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if result > 0 then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
return result
"""
)

# KEYS: lease, fence, state, ended. ARGV: value, ttl_ms, fence, json, state_ttl_s
SAVE = (
    ENDED_CHECK
    + OURS
    + """
if ours() == 0 then return 0 end
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
return 1
"""
)

# KEYS: lease. ARGV: value
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# KEYS: socket, ended. ARGV: epoch, replaces ("" for the call's first socket), ttl_s
# 1: claimed; 0: another socket holds the room; -1: the call is over.
CLAIM_SOCKET = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""
