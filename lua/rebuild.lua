-- rebuild.lua: restore an item whose Redis state was lost, from the system of record.
--
-- KEYS[1] item hash       (written only if missing)
-- KEYS[2] buyers hash     user_id -> live units; replaced
-- KEYS[3] restocked set   order ids whose units are already counted as available; added to
--
-- ARGV[1] available units (total - live units)
-- ARGV[2] total units
-- ARGV[3] price in cents
-- ARGV[4] start_ms
-- ARGV[5] end_ms
-- ARGV[6] per-user limit (0 = no limit)
-- ARGV[7] payment timeout in seconds
-- ARGV[8] n: the number of buyer pairs that follow
-- ARGV[9 .. 8+2n]   user_id, units, user_id, units, ...
-- ARGV[9+2n ..]     order ids of cancelled orders (decimal strings)
--
-- Returns 1 if the item was rebuilt, 0 if its hash exists and is not fenced
-- (nothing changed: live state always wins over a rebuild). A fenced item
-- (fence.lua: Redis came back from an AOF that may be stale) is overwritten,
-- which also lifts the fence. The rebuilt hash records rid and nid afresh,
-- as warm.lua does: this server now holds the item's true state.

if redis.call('EXISTS', KEYS[1]) == 1 and not redis.call('HGET', KEYS[1], 'fenced') then
  return 0
end
redis.call('DEL', KEYS[1])

-- Arguments go to Redis in chunks: unpack() of a very long list would
-- overflow the Lua C stack.
local function chunked(cmd, key, from, to, step)
  for i = from, to, step do
    redis.call(cmd, key, unpack(ARGV, i, math.min(i + step - 1, to)))
  end
end

local n = tonumber(ARGV[8])
redis.call('DEL', KEYS[2])
chunked('HSET', KEYS[2], 9, 8 + 2 * n, 1000)
chunked('SADD', KEYS[3], 9 + 2 * n, #ARGV, 1000)
local info = redis.call('INFO', 'server')
redis.call('HSET', KEYS[1],
  'stock', ARGV[1], 'total', ARGV[2], 'price', ARGV[3],
  'start_ms', ARGV[4], 'end_ms', ARGV[5], 'limit', ARGV[6], 'timeout_s', ARGV[7],
  'rid', string.match(info, 'run_id:(%x+)') .. ':' ..
    string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)'))
if string.match(info, 'redis_mode:(%a+)') == 'cluster' then
  redis.call('HSET', KEYS[1], 'nid', redis.call('CLUSTER', 'MYID'))
end
return 1
