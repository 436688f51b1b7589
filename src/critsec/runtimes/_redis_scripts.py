"""The Redis runtime's state changes, each one Lua script run atomically.

Every change to a primitive's state happens inside one script: Redis runs
a script to its end with nothing else in between, so a client that dies,
or a connection that drops, leaves an operation done or not begun -- never
half done. Clients never change state with plain commands in a sequence.

Waiting happens outside scripts (a script cannot block): a client that
must wait *registers* in the script that found it must wait (so no wake-up
can fall between the check and the registration), then blocks on its own
mailbox list ``wake:<id>`` with ``BLMOVE`` into ``got:<id>``. Whoever makes
progress possible *hands over* in the same script: the lock to the first
live waiter, an item to the first live getter, room to the first live
putter (its item goes in), a shutdown to every waiter. So service is FIFO,
no waiter is woken for nothing, and nobody polls. ``BLMOVE`` rather than
``BLPOP``: if a reply is lost with its connection (a client-side timeout,
a dropped link), the message is still in ``got:<id>``, and the client's
``cancel`` finds it.

Liveness: a registered waiter records an expiry in the ``alive`` hash and
refreshes it every heartbeat (its wait ends every heartbeat to call the
script again); a lock's owner is the key ``owner`` with a lease (``PX``)
renewed by its process; an at-least-once taker's expiry is refreshed by its
process while it holds items. Whoever hands over skips the dead; an owner
whose lease ran out is replaced by the first live waiter, who is told
(``died``); a dead taker's items go back to the head of the queue.

Keys: ``KEYS[1]`` is the primitive's base key, ``critsec:{<kind>:<name>}``;
every key a script touches is the base plus a suffix, so a primitive's keys
share one Redis Cluster hash slot. ``ARGV[1]`` is the caller's id (one per
thread of a process). Replies are arrays led by a word: ``granted``,
``wait``, ``item``, ``msg`` (a message that was waiting in the caller's
mailbox), ...
"""

from __future__ import annotations

__all__ = ["COUNTER", "LOCK", "QUEUE", "Scripts"]

#: Lua shared by every script.
_PRELUDE = r"""
local base, me = KEYS[1], ARGV[1]
local function k(suffix) return base .. ':' .. suffix end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Mailboxes: wake:<id> is where a hand-over goes; a waiter's BLMOVE moves
-- it to got:<id>. Both expire, so a client that vanishes leaves nothing for
-- long; an hour is far longer than any hand-over takes to be read. got: is
-- made here, holding an empty placeholder, so that it has an expiry before
-- BLMOVE pushes onto it. `boxes` names every mailbox, for delete and sweep.
local MAILBOX_TTL = 3600000
local function send(to, message)
  local box, got = k('wake:' .. to), k('got:' .. to)
  redis.call('RPUSH', box, message)
  redis.call('PEXPIRE', box, MAILBOX_TTL)
  if redis.call('EXISTS', got) == 0 then redis.call('RPUSH', got, '') end
  redis.call('PEXPIRE', got, MAILBOX_TTL)
  redis.call('SADD', k('boxes'), to)
end
-- A message handed to the caller before this call: take it now. What an
-- earlier wait moved to got: was read (or the client gave up on it).
local function pending_message()
  redis.call('DEL', k('got:' .. me))
  return redis.call('LPOP', k('wake:' .. me))
end
-- What a waiter that gave up finds in its mailbox (nil: nothing), emptied.
local function leftover_message()
  local msg = redis.call('LPOP', k('got:' .. me))
  if msg == '' or not msg then msg = redis.call('LPOP', k('wake:' .. me)) end
  redis.call('DEL', k('got:' .. me), k('wake:' .. me))
  redis.call('SREM', k('boxes'), me)
  return msg
end
-- Forget the mailboxes that expired (kept small: looked at past 64).
local function sweep_boxes()
  if redis.call('SCARD', k('boxes')) <= 64 then return end
  for _, who in ipairs(redis.call('SMEMBERS', k('boxes'))) do
    if redis.call('EXISTS', k('wake:' .. who), k('got:' .. who)) == 0 then
      redis.call('SREM', k('boxes'), who)
    end
  end
end
local function alive(who, now)
  local expiry = tonumber(redis.call('HGET', k('alive'), who))
  return expiry ~= nil and expiry >= now
end
local function register(list, now, window)
  if not redis.call('LPOS', k(list), me) then redis.call('RPUSH', k(list), me) end
  redis.call('HSET', k('alive'), me, now + window)
end
local forget
-- The first live waiter of a list, popped; the dead are dropped on the way.
local function pop_live(list, now)
  while true do
    local who = redis.call('LPOP', k(list))
    if not who then return nil end
    if alive(who, now) then return who end
    forget(who)
  end
end
local function wake_all(list, message)
  for _, who in ipairs(redis.call('LRANGE', k(list), 0, -1)) do
    send(who, message)
    forget(who)
  end
  redis.call('DEL', k(list))
end
"""

_LOCK_COMMON = r"""
forget = function(who)
  redis.call('HDEL', k('alive'), who)
  redis.call('HDEL', k('lease'), who)
end
-- The lock to `who` for `lease` ms. The fencing token grows by one at
-- every grant; `held` ("token died") outlives the lease, so a grant that
-- finds it knows the previous owner never released: it died (or lost its
-- lease).
local function granted(token)
  -- SET ... GET: the previous `held` (false if none) in the same call.
  local died = redis.call('SET', k('held'), token .. ' 0', 'GET') and 1 or 0
  if died == 1 then redis.call('SET', k('held'), token .. ' 1') end
  return {token, died}
end
local function grant(who, lease)
  redis.call('SET', k('owner'), who, 'PX', lease)
  return granted(redis.call('INCR', k('fence')))
end
local function hand_off(now)
  local who = pop_live('queue', now)
  if who then
    local lease = tonumber(redis.call('HGET', k('lease'), who))
    forget(who)
    local g = grant(who, lease)
    send(who, 'granted ' .. g[1] .. ' ' .. g[2])
  end
end
"""

_LOCK_ACQUIRE = r"""
-- ARGV[5]: '1' when the caller has waited (a hand-over may be in its mailbox).
if ARGV[5] == '1' then
  local msg = pending_message()
  if msg then return {'msg', msg} end
end
-- (A grant's reply is one integer, token * 2 + died: cheaper to send and
-- parse than an array. The common case is at the script's head.)
local lease, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
if redis.call('EXISTS', k('owner')) == 0 then
  -- Free. First come, first served: the first live waiter's, or the
  -- caller's if nobody waits (the dead at the head are dropped).
  local first = redis.call('LINDEX', k('queue'), 0)
  while first and first ~= me and not alive(first, now) do
    redis.call('LPOP', k('queue'))
    forget(first)
    first = redis.call('LINDEX', k('queue'), 0)
  end
  if not first or first == me then
    if first then
      redis.call('LPOP', k('queue'))
      forget(me)
    end
    local g = grant(me, lease)
    return g[1] * 2 + g[2]
  end
end
if ARGV[4] == '0' then return 0 end
sweep_boxes()
register('queue', now, window)
redis.call('HSET', k('lease'), me, lease)
return {'wait', redis.call('PTTL', k('owner')), tonumber(redis.call('GET', k('fence')) or '0')}
"""

_LOCK_RELEASE = r"""
-- Released at the script's head; someone waits: hand over.
hand_off(now_ms())
return 1
"""

_LOCK_RENEW = r"""
if redis.call('GET', k('owner')) ~= me then return 0 end
redis.call('PEXPIRE', k('owner'), ARGV[2])
return 1
"""

_LOCK_CANCEL = r"""
redis.call('LREM', k('queue'), 0, me)
forget(me)
local msg = leftover_message()
if msg then return {'msg', msg} end
-- Granted since the caller last registered (the fence moved past what it
-- saw then), and the message lost with a connection: it is ours all the same.
-- (The caller may also hold it from before: a thread that waits for itself.)
local seen = tonumber(ARGV[2])
if redis.call('GET', k('owner')) == me and tonumber(redis.call('GET', k('fence'))) > seen then
  return {'msg', 'granted ' .. redis.call('GET', k('held'))}
end
return {'none'}
"""

_LOCK_STATE = r"""
return {redis.call('EXISTS', k('owner')), redis.call('LLEN', k('queue'))}
"""

_QUEUE_COMMON = r"""
forget = function(who)
  redis.call('HDEL', k('alive'), who)
  redis.call('HDEL', k('pend'), who)
end
local at_least_once = redis.call('HGET', k('meta'), 'delivery') == 'at-least-once'
local function lend(item, taker, now, window)
  redis.call('HSET', k('lent'), item, taker)
  redis.call('HSET', k('alive'), taker, now + window)
  return redis.call('HINCRBY', k('deliveries'), item, 1)
end
-- A new item: to the first live getter if one waits, else to the tail.
local function enqueue(payload, now, window)
  redis.call('HINCRBY', k('meta'), 'unfinished', 1)
  local item = redis.call('HINCRBY', k('meta'), 'nextid', 1)
  local getter = pop_live('getters', now)
  if not getter then
    redis.call('HSET', k('data'), item, payload)
    redis.call('RPUSH', k('items'), item)
    return
  end
  forget(getter)
  -- It lives for a window more: time to move the item out of its mailbox.
  redis.call('HSET', k('alive'), getter, now + window)
  local deliveries = 1
  if at_least_once then
    redis.call('HSET', k('data'), item, payload)  -- kept until acknowledged
    deliveries = lend(item, getter, now, window)
  else
    redis.call('HSET', k('handed'), getter, item)  -- see reap()
  end
  send(getter, 'item ' .. item .. ' ' .. deliveries .. ' ' .. payload)
end
-- Room for blocked putters: their items go in, first come first.
local function room(now, window)
  local maxsize = tonumber(redis.call('HGET', k('meta'), 'maxsize'))
  while maxsize <= 0 or redis.call('LLEN', k('items')) < maxsize do
    local putter = pop_live('putters', now)
    if not putter then return end
    local payload = redis.call('HGET', k('pend'), putter)
    forget(putter)
    enqueue(payload, now, window)
    send(putter, 'put')
  end
end
local function take(now, window, most)
  local got = {'items'}
  for _ = 1, most do
    local item = redis.call('LPOP', k('items'))
    if not item then break end
    local payload = redis.call('HGET', k('data'), item)
    local deliveries = 1
    if at_least_once then
      deliveries = lend(item, me, now, window)
    else
      redis.call('HDEL', k('data'), item)
    end
    local n = #got
    got[n + 1], got[n + 2], got[n + 3] = item, deliveries, payload
  end
  if #got == 1 then return nil end
  room(now, window)
  return got
end
-- Items of the dead. At least once: a taker whose expiry passed gave up
-- its items, which go back to the head (oldest first), to be delivered
-- again. At most once: an item handed to a getter that died before it
-- moved the item out of its mailbox was never delivered: back to the head
-- too; one it moved out is gone with it (that is what at-most-once means).
local function reap(now)
  sweep_boxes()
  if redis.call('HLEN', k('alive')) > 64 then
    -- Expiries of clients long gone: a missing entry means dead too.
    local entries = redis.call('HGETALL', k('alive'))
    for i = 1, #entries, 2 do
      if tonumber(entries[i + 1]) < now then redis.call('HDEL', k('alive'), entries[i]) end
    end
  end
  if at_least_once then
    local lent = redis.call('HGETALL', k('lent'))
    local back = {}
    for i = 1, #lent, 2 do
      if not alive(lent[i + 1], now) then table.insert(back, tonumber(lent[i])) end
    end
    table.sort(back)
    for i = #back, 1, -1 do
      redis.call('HDEL', k('lent'), back[i])
      redis.call('LPUSH', k('items'), back[i])
    end
    return #back
  end
  local handed = redis.call('HGETALL', k('handed'))
  local back = 0
  for i = 1, #handed, 2 do
    local getter, item = handed[i], handed[i + 1]
    if not alive(getter, now) then
      local box = k('wake:' .. getter)
      local msg = redis.call('LINDEX', box, 0)
      local id, payload
      if msg then id, payload = string.match(msg, '^item (%d+) %d+ (.*)$') end
      if id == item then
        redis.call('LPOP', box)
        redis.call('HSET', k('data'), id, payload)
        redis.call('LPUSH', k('items'), id)
        back = back + 1
      end
      redis.call('HDEL', k('handed'), getter)
    end
  end
  return back
end
"""

_QUEUE_CREATE = r"""
local meta = k('meta')
if redis.call('HSETNX', meta, 'maxsize', ARGV[2]) == 1 then
  redis.call('HSET', meta, 'delivery', ARGV[3], 'shutdown', 0, 'unfinished', 0, 'nextid', 0)
  return {'created'}
end
return {'exists', redis.call('HGET', meta, 'maxsize'), redis.call('HGET', meta, 'delivery')}
"""

_QUEUE_PUT = r"""
-- ARGV: me, block, window, payload, ...: the payloads go in, in order,
-- while there is room; the first that finds none waits (if block) as a
-- registered putter, to go in when a get makes room. The reply says how
-- many went in: {'put', n}, {'wait', n}, {'full', n}, {'shutdown', n}.
local msg = pending_message()
if msg then return {'msg', msg} end
if redis.call('HGET', k('meta'), 'shutdown') == '1' then return {'shutdown', 0} end
local now, window = now_ms(), tonumber(ARGV[3])
local maxsize = tonumber(redis.call('HGET', k('meta'), 'maxsize'))
if not maxsize then return {'missing', 0} end  -- deleted, or never made (create=False)
for i = 4, #ARGV do
  if maxsize > 0 and redis.call('LLEN', k('items')) >= maxsize then
    if ARGV[2] == '0' then return {'full', i - 4} end
    redis.call('HSET', k('pend'), me, ARGV[i])
    register('putters', now, window)
    return {'wait', i - 4}
  end
  enqueue(ARGV[i], now, window)
end
return {'put', #ARGV - 3}
"""

_QUEUE_GET = r"""
-- ARGV: me, block, window, most: up to `most` items, oldest first, as
-- {'items', id, deliveries, payload, id, ...}; or wait for one.
local msg = pending_message()
if msg then return {'msg', msg} end
redis.call('HDEL', k('handed'), me)
local now, window = now_ms(), tonumber(ARGV[3])
reap(now)
local got = take(now, window, tonumber(ARGV[4]))
if got then return got end
-- Shut down and drained -- unless items lent to takers may still come back
-- (at least once): until they are acknowledged, getters wait for them.
local may_come_back = at_least_once and redis.call('HLEN', k('lent')) > 0
if redis.call('HGET', k('meta'), 'shutdown') == '1' and not may_come_back then
  return {'shutdown'}
end
if ARGV[2] == '0' then return {'empty'} end
register('getters', now, window)
return {'wait'}
"""

_QUEUE_JOIN = r"""
local msg = pending_message()
if msg then return {'msg', msg} end
if tonumber(redis.call('HGET', k('meta'), 'unfinished')) == 0 then return {'joined'} end
register('joiners', now_ms(), tonumber(ARGV[2]))
return {'wait'}
"""

_QUEUE_TASK_DONE = r"""
local item = ARGV[2]
if item ~= '' then
  if redis.call('HGET', k('lent'), item) ~= me then return {'reclaimed'} end
  redis.call('HDEL', k('lent'), item)
  redis.call('HDEL', k('data'), item)
  redis.call('HDEL', k('deliveries'), item)
end
local left = redis.call('HINCRBY', k('meta'), 'unfinished', -1)
if left < 0 then
  redis.call('HSET', k('meta'), 'unfinished', 0)
  return {'too many'}
end
if left == 0 then wake_all('joiners', 'joined') end
if item ~= '' and redis.call('HGET', k('meta'), 'shutdown') == '1'
    and redis.call('HLEN', k('lent')) == 0 and redis.call('LLEN', k('items')) == 0 then
  wake_all('getters', 'shutdown')  -- the last lent item is done: nothing can come back
end
return {'done'}
"""

_QUEUE_SHUTDOWN = r"""
redis.call('HSET', k('meta'), 'shutdown', 1)
if ARGV[2] == '1' then
  local items = redis.call('LRANGE', k('items'), 0, -1)
  for _, item in ipairs(items) do
    redis.call('HDEL', k('data'), item)
    redis.call('HDEL', k('deliveries'), item)
  end
  redis.call('DEL', k('items'))
  local left = tonumber(redis.call('HGET', k('meta'), 'unfinished')) - #items
  if left < 0 then left = 0 end
  redis.call('HSET', k('meta'), 'unfinished', left)
  if left == 0 then wake_all('joiners', 'joined') end
end
if not (at_least_once and redis.call('HLEN', k('lent')) > 0) then
  wake_all('getters', 'shutdown')  -- else they wait for what may come back
end
wake_all('putters', 'shutdown')
return {'done'}
"""

_QUEUE_CANCEL = r"""
redis.call('LREM', k(ARGV[2]), 0, me)
forget(me)
local msg = leftover_message()
if msg then return {'msg', msg} end
return {'none'}
"""

_QUEUE_KEEP = r"""
-- Takers that still hold lent items (at least once) live: ARGV[3], ...
local expiry = now_ms() + tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('HSET', k('alive'), ARGV[i], expiry) end
return 1
"""

_QUEUE_STATE = r"""
local now = now_ms()
reap(now)
-- (A queue not made yet reads as an empty one; Lua would cut a reply at a nil.)
return {
  redis.call('LLEN', k('items')),
  tonumber(redis.call('HGET', k('meta'), 'unfinished') or '0'),
  redis.call('HGET', k('meta'), 'shutdown') or '0',
}
"""

_QUEUE_DELETE = r"""
-- ARGV: me, finished_only. Delete the queue's every key -- or, with
-- finished_only, only once it is shut down with nothing left to deliver.
-- 1 if it was deleted. Its waiters' mailboxes go too (theirs to wait
-- again, on a queue that no longer exists: as on one not made yet).
if redis.call('EXISTS', k('meta')) == 0 then return 0 end
if ARGV[2] == '1' and (redis.call('HGET', k('meta'), 'shutdown') ~= '1'
    or redis.call('LLEN', k('items')) > 0 or redis.call('HLEN', k('lent')) > 0) then
  return 0
end
for _, who in ipairs(redis.call('SMEMBERS', k('boxes'))) do
  redis.call('DEL', k('wake:' .. who), k('got:' .. who))
end
redis.call('DEL', k('meta'), k('items'), k('data'), k('deliveries'), k('lent'), k('handed'),
  k('getters'), k('putters'), k('joiners'), k('alive'), k('pend'), k('boxes'))
return 1
"""

_QUEUE_RECLAIM = r"""
return reap(now_ms())
"""

_COUNTER_FENCED = r"""
-- A write carrying a fencing token older than the newest one seen is
-- refused: its writer's lock lease ran out and the lock was granted again.
local token = tonumber(ARGV[2])
local newest = tonumber(redis.call('GET', k('fence')) or '0')
if token < newest then return {'stale', newest} end
redis.call('SET', k('fence'), token)
if ARGV[3] == 'set' then
  redis.call('SET', base, ARGV[4])
  return {'ok', ARGV[4]}
end
return {'ok', redis.call('INCRBY', base, ARGV[4])}
"""


def _script(*parts: str, first: str = "") -> str:
    """A script: ``first`` (a fast path that returns before anything else
    is defined), the prelude, then ``parts``."""
    return "\n".join((first, _PRELUDE, *parts))


# The lock's common cases, at the head of their scripts: nobody holds it
# and nobody waits (acquire), nobody waits (release). They return before
# the prelude defines its dozen functions, which costs more than they do.
_LOCK_ACQUIRE_FIRST = r"""
if ARGV[5] == '0' then
  local base = KEYS[1]
  if redis.call('LLEN', base .. ':queue') == 0
      and redis.call('SET', base .. ':owner', ARGV[1], 'NX', 'PX', ARGV[2]) then
    local token = redis.call('INCR', base .. ':fence')  -- as granted(), below
    local died = redis.call('SET', base .. ':held', token .. ' 0', 'GET') and 1 or 0
    if died == 1 then redis.call('SET', base .. ':held', token .. ' 1') end
    return token * 2 + died
  end
end
"""
_LOCK_RELEASE_FIRST = r"""
do
  local base = KEYS[1]
  if redis.call('GET', base .. ':owner') ~= ARGV[1] then return 0 end
  redis.call('DEL', base .. ':owner', base .. ':held')
  if redis.call('LLEN', base .. ':queue') == 0 then return 1 end
end
"""


#: name -> Lua source, per primitive.
LOCK = {
    "acquire": _script(_LOCK_COMMON, _LOCK_ACQUIRE, first=_LOCK_ACQUIRE_FIRST),
    "release": _script(_LOCK_COMMON, _LOCK_RELEASE, first=_LOCK_RELEASE_FIRST),
    "renew": _script(_LOCK_COMMON, _LOCK_RENEW),
    "cancel": _script(_LOCK_COMMON, _LOCK_CANCEL),
    "state": _script(_LOCK_COMMON, _LOCK_STATE),
}
QUEUE = {
    "create": _script(_QUEUE_CREATE),
    "put": _script(_QUEUE_COMMON, _QUEUE_PUT),
    "get": _script(_QUEUE_COMMON, _QUEUE_GET),
    "join": _script(_QUEUE_COMMON, _QUEUE_JOIN),
    "task_done": _script(_QUEUE_COMMON, _QUEUE_TASK_DONE),
    "shutdown": _script(_QUEUE_COMMON, _QUEUE_SHUTDOWN),
    "cancel": _script(_QUEUE_COMMON, _QUEUE_CANCEL),
    "keep": _script(_QUEUE_KEEP),
    "state": _script(_QUEUE_COMMON, _QUEUE_STATE),
    "reclaim": _script(_QUEUE_COMMON, _QUEUE_RECLAIM),
    "delete": _script(_QUEUE_DELETE),
}
COUNTER = {"fenced": _script(_COUNTER_FENCED)}


class Scripts:
    """The scripts of one primitive kind, registered with one client."""

    def __init__(self, client: object, sources: dict[str, str]) -> None:
        self._scripts = {name: client.register_script(src) for name, src in sources.items()}  # type: ignore[attr-defined]

    def __getitem__(self, name: str) -> object:
        return self._scripts[name]
