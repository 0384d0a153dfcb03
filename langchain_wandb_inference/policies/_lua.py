"""The Lua scripts of the fleet state: every read-modify-write of Redis is one of these.

A script runs atomically in Redis, so no interleaving of processes can break an
invariant (a slot granted twice, a reservation admitted past the limit).  Time comes
from the server (``TIME``), so the workers' clocks do not matter.  Every key a script
writes gets an expiry in the same script; the layout is in ``_redis`` and the README.

Conventions: numbers that must stay floats go back to Python as strings (Redis turns a
Lua number into an integer); times are milliseconds.  Needs Redis >= 6.2 (``LPOP``
with a count, ``BLPOP`` with a fractional timeout).
"""

from __future__ import annotations

_NOW = """
local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
local function expire_by_max(zkey, also)
  -- a zset scored by expiry lives until its latest member expires (+1 s)
  local top = redis.call('ZRANGE', zkey, -1, -1, 'WITHSCORES')
  if top[2] then
    local at = math.floor(tonumber(top[2])) + 1000
    redis.call('PEXPIREAT', zkey, at)
    if also then redis.call('PEXPIREAT', also, at) end
  end
end
"""

# Gate.  KEYS: leases (zset id -> expiry), state (hash), queue (zset ticket -> order),
# qexp (zset ticket -> expiry).  ARGV 1-8 are common, script-specific ones follow.
# Ids are "<process>.<uuid>": a grant pushes the id to that process's wake list.
_GATE = (
    _NOW
    + """
local leases, state, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local wake = ARGV[1]
local initial, probe_every, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state_ttl, lease_ms, stall_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ticket_ms = tonumber(ARGV[8])

local function capacity(l)
  local c = math.floor(l)
  if cap > 0 and cap < c then c = cap end
  if c < 1 then c = 1 end
  return c
end

local _v = redis.call('HMGET', state, 'limit', 'slow', 'streak', 'progress')
local limit, slow, streak = tonumber(_v[1]), tonumber(_v[2]) or 1, tonumber(_v[3]) or 0
local progress = tonumber(_v[4]) or now
if limit == nil then
  limit, slow, streak = initial, 1, 0
  if cap > 0 and cap < limit then limit = cap end
end

-- expired leases (their holders died) and tickets (their waiters stopped) go
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', qexp, '-inf', now)) do
  redis.call('ZREM', queue, id)
  redis.call('ZREM', qexp, id)
end

local function grant()
  -- free slots go to the head of the queue, FIFO, each woken through its process's
  -- list; a queue that made no progress for stall_ms lets its head through regardless
  local n = 0
  local stalled = now - progress >= stall_ms
  while redis.call('ZCARD', queue) > 0
      and (stalled or redis.call('ZCARD', leases) < capacity(limit)) do
    local id = redis.call('ZRANGE', queue, 0, 0)[1]
    redis.call('ZREM', queue, id)
    redis.call('ZREM', qexp, id)
    redis.call('ZADD', leases, now + lease_ms, id)
    local process = string.match(id, '^(%w+)%.')
    if process then
      redis.call('RPUSH', wake .. process, id)
      redis.call('PEXPIRE', wake .. process, ticket_ms)
    end
    n, stalled, progress = n + 1, false, now
  end
  return n
end

local function enqueue(id, front)
  local score
  if front then
    local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
    if head[2] then score = tonumber(head[2]) - 1 else score = 0 end
  else
    score = redis.call('HINCRBY', state, 'seq', 1)
  end
  redis.call('HSET', state, 'queued', now)
  redis.call('ZADD', queue, score, id)
  redis.call('ZADD', qexp, now + ticket_ms, id)
end

local function finish()
  redis.call('HSET', state, 'limit', limit, 'slow', slow, 'streak', streak,
             'progress', progress)
  redis.call('PEXPIRE', state, state_ttl)
  expire_by_max(leases)
  expire_by_max(qexp, queue)
end
"""
)

GATE_ACQUIRE = (
    _GATE
    + """
-- ARGV 9 id, 10 front, 11 force  ->  1 granted, 0 queued
local id = ARGV[9]
grant()  -- now the queue is empty or every slot taken: nobody is overtaken
local got = 0
if ARGV[11] == '1' or redis.call('ZCARD', leases) < capacity(limit) then
  redis.call('ZADD', leases, now + lease_ms, id)
  got = 1
else
  enqueue(id, ARGV[10] == '1')
end
finish()
return got
"""
)

GATE_POLL = (
    _GATE
    + """
-- ARGV 9 id, 10 force  ->  1 granted, 2 forced, 0 waiting
local id, force = ARGV[9], ARGV[10] == '1'
grant()
local got = 0
if redis.call('ZSCORE', leases, id) then
  got = 1  -- granted meanwhile: its lease time starts again now
elseif force then
  got = 2
elseif redis.call('ZSCORE', queue, id) then
  redis.call('ZADD', qexp, now + ticket_ms, id)
elseif redis.call('ZCARD', queue) == 0 and redis.call('ZCARD', leases) < capacity(limit) then
  got = 1  -- the ticket expired (its waiter stalled), but a slot is free
else
  enqueue(id, true)  -- expired: back at the front
end
if got > 0 then
  redis.call('ZREM', queue, id)
  redis.call('ZREM', qexp, id)
  redis.call('ZADD', leases, now + lease_ms, id)
end
finish()
return got
"""
)

GATE_HEARTBEAT = (
    _GATE
    + """
-- ARGV 9.. ids  ->  per id: 2 granted, 1 queued, 0 gone
grant()
local out = {}
for i = 9, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', leases, id) then
    out[#out + 1] = 2
  elseif redis.call('ZSCORE', queue, id) then
    redis.call('ZADD', qexp, now + ticket_ms, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
finish()
return out
"""
)

GATE_RELEASE = (
    _GATE
    + """
-- ARGV 9 id, 10 congested, 11 succeeded, 12 contended_ms  ->  {others in flight, contended}
local id, congested, succeeded = ARGV[9], ARGV[10] == '1', ARGV[11] == '1'
local held = redis.call('ZREM', leases, id)
local in_flight = redis.call('ZCARD', leases)
local waiting = redis.call('ZCARD', queue)
local queued = tonumber(redis.call('HGET', state, 'queued')) or -1e18
local contended = (waiting > 0 or now - queued < tonumber(ARGV[12])) and 1 or 0
if congested then
  -- a concurrency 429: drop to what the service carried, leave slow start
  limit = math.max(1, math.min(math.floor(limit), in_flight))
  slow, streak = 0, 0
elseif succeeded and held == 1 and (waiting > 0 or in_flight + 1 >= capacity(limit)) then
  if not (cap > 0 and limit >= cap) then
    if slow == 1 then
      limit = limit + 1
    else
      streak = streak + 1
      if streak >= probe_every * capacity(limit) then
        limit, streak = limit + 1, 0
      end
    end
  end
end
progress = now
grant()
finish()
return {in_flight, contended}
"""
)

GATE_CANCEL = (
    _GATE
    + """
-- ARGV 9 id: a waiter gave up; dequeue it, or give back the slot granted meanwhile
local id = ARGV[9]
redis.call('ZREM', leases, id)
redis.call('ZREM', queue, id)
redis.call('ZREM', qexp, id)
grant()
finish()
return 1
"""
)

GATE_RENEW = (
    _GATE
    + """
-- ARGV 9.. '+id' (its stream delivered since) or '-id'  ->  per id 1/0
local out = {}
for i = 9, #ARGV do
  local id = string.sub(ARGV[i], 2)
  if redis.call('ZSCORE', leases, id) then
    redis.call('ZADD', leases, 'XX', now + lease_ms, id)
    if string.sub(ARGV[i], 1, 1) == '+' then progress = now end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0  -- expired (this process stalled, or Redis restarted): lost
  end
end
grant()
finish()
return out
"""
)

GATE_CAPACITY = (
    _GATE
    + """
grant()
finish()
return capacity(limit)
"""
)

# Circuit (LocalCircuit's rules).  KEYS: state (hash: opened), window (list of
# "<failed> <call id> <fingerprint>", oldest first), probes (zset permit -> expiry).
# ARGV 1: expiry of the state and window (ms).
_CIRCUIT = (
    _NOW
    + """
local st, win, probes = KEYS[1], KEYS[2], KEYS[3]
local ttl = tonumber(ARGV[1])
local opened = tonumber(redis.call('HGET', st, 'opened'))
local function open()
  redis.call('HSET', st, 'opened', now)
  redis.call('PEXPIRE', st, ttl)
end
"""
)

CIRCUIT_ADMIT = (
    _CIRCUIT
    + """
-- ARGV 2 cooldown_ms, 3 probes, 4 probe_ms, 5 permit, 6 refusable
--   ->  {kind ('closed' | 'probe' | 'forced' | 'refused'), ms until a probe}
if not opened then return {'closed', '0'} end
local cooldown, most, probe_ms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', probes, '-inf', now)  -- a dead prober's permit comes back
local waited = now - opened
if waited >= cooldown and redis.call('ZCARD', probes) < most then
  redis.call('ZADD', probes, now + probe_ms, ARGV[5])
  expire_by_max(probes)
  return {'probe', '0'}
end
if ARGV[6] == '0' then return {'forced', '0'} end
return {'refused', tostring(math.max(0, cooldown - waited))}
"""
)

CIRCUIT_RECORD = (
    _CIRCUIT
    + """
-- ARGV 2 kind, 3 permit, 4 call id, 5 fingerprint, 6 outcome, 7 window, 8 minimum calls,
-- 9 failure rate
local kind, call_id, fingerprint, outcome = ARGV[2], ARGV[4], ARGV[5], ARGV[6]
if kind == 'probe' then redis.call('ZREM', probes, ARGV[3]) end
if outcome == 'none' then return 0 end
local failed = outcome == 'failure'
if opened then
  if not failed and kind ~= 'closed' then
    redis.call('DEL', st, win, probes)  -- healthy again: closed, with a fresh window
  elseif failed and kind == 'probe' then
    open()  -- another cooldown
  end
  return 0
end
-- the call's entry (or the same request's earlier failure) is updated, else one added
local entry = (failed and '1' or '0') .. ' ' .. call_id .. ' ' .. fingerprint
local entries = redis.call('LRANGE', win, 0, -1)
local found = nil
for i, e in ipairs(entries) do
  local f, cid, fp = string.match(e, '^(%d) (%S*) (%S*)$')
  if cid == call_id or (failed and f == '1' and fingerprint ~= '' and fp == fingerprint) then
    found = i
    break
  end
end
if found then
  redis.call('LSET', win, found - 1, entry)
else
  redis.call('RPUSH', win, entry)
  redis.call('LTRIM', win, -tonumber(ARGV[7]), -1)
end
redis.call('PEXPIRE', win, ttl)
local calls, failures = 0, 0
for _, e in ipairs(redis.call('LRANGE', win, 0, -1)) do
  calls = calls + 1
  if string.sub(e, 1, 1) == '1' then failures = failures + 1 end
end
if calls >= tonumber(ARGV[8]) and failures >= tonumber(ARGV[9]) * calls then open() end
return 0
"""
)

# Ledger.  KEYS: state (hash: spent), res (hash id -> floor), resx (zset id -> expiry).
# ARGV 1: expiry of the spend (ms).
_LEDGER = (
    _NOW
    + """
local st, res, resx = KEYS[1], KEYS[2], KEYS[3]
local ttl = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', resx, '-inf', now)) do
  redis.call('HDEL', res, id)  -- the reservation of a worker that died
  redis.call('ZREM', resx, id)
end
local reserved = 0
for _, v in ipairs(redis.call('HVALS', res)) do reserved = reserved + tonumber(v) end
local function finish()
  redis.call('PEXPIRE', st, ttl)
  expire_by_max(resx, res)
end
local function fmt(x) return string.format('%.17g', x) end
local function spent() return redis.call('HGET', st, 'spent') or '0' end
"""
)

LEDGER_RESERVE = (
    _LEDGER
    + """
-- ARGV 2 id, 3 floor, 4 limit, 5 reservation ms  ->  {1 held / 0 refused, spent, reserved,
-- reservations}
local floor, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local got = 0
if tonumber(spent()) + reserved + floor < limit then
  redis.call('HSET', res, ARGV[2], ARGV[3])
  redis.call('ZADD', resx, now + tonumber(ARGV[5]), ARGV[2])
  redis.call('HSETNX', st, 'spent', '0')
  got = 1
end
local held = redis.call('HLEN', res)
finish()
return {got, spent(), fmt(reserved), held}
"""
)

LEDGER_SETTLE = (
    _LEDGER
    + """
-- ARGV 2 id ('' for none), 3 cost  ->  spent.  Money spent is counted even when the
-- reservation had expired.
redis.call('HDEL', res, ARGV[2])
redis.call('ZREM', resx, ARGV[2])
local total = redis.call('HINCRBYFLOAT', st, 'spent', ARGV[3])
finish()
return total
"""
)

LEDGER_RENEW = (
    _LEDGER
    + """
-- ARGV 2 reservation ms, 3.. ids  ->  per id 1/0
local out = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', resx, ARGV[i]) then
    redis.call('ZADD', resx, 'XX', now + tonumber(ARGV[2]), ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
finish()
return out
"""
)

LEDGER_VIEW = (
    _LEDGER
    + """
return {spent(), fmt(reserved), redis.call('HLEN', res)}
"""
)
