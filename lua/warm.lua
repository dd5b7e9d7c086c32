-- warm.lua: publish an item's stock and metadata, exactly once.
--
-- KEYS[1] item hash
--
-- ARGV[1] total units (also the initial stock)
-- ARGV[2] price in cents
-- ARGV[3] start_ms  (window start, inclusive, Unix ms)
-- ARGV[4] end_ms    (window end, exclusive, Unix ms)
-- ARGV[5] per-user limit (0 = no limit)
-- ARGV[6] payment timeout in seconds
--
-- Returns 1 if the hash was created, 0 if it already existed. An existing hash
-- is never touched: publishing twice must not reset stock that was sold.
--
-- The hash also records who holds the state (see fence.lua): rid, the run_id
-- of the Redis server running this script and its master_replid
-- ("<run_id>:<replid>"; the replid changes on every restart and every
-- promotion, also of a node promoted back), and on a cluster node nid, its
-- node id (CLUSTER MYID). Both are read here, on the server, so no client can
-- record the wrong server. INFO's redis_mode says whether this is a cluster
-- node, so a single server costs no failed CLUSTER call.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local info = redis.call('INFO', 'server')
redis.call('HSET', KEYS[1],
  'stock', ARGV[1], 'total', ARGV[1], 'price', ARGV[2],
  'start_ms', ARGV[3], 'end_ms', ARGV[4], 'limit', ARGV[5], 'timeout_s', ARGV[6],
  'rid', string.match(info, 'run_id:(%x+)') .. ':' ..
    string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)'))
if string.match(info, 'redis_mode:(%a+)') == 'cluster' then
  redis.call('HSET', KEYS[1], 'nid', redis.call('CLUSTER', 'MYID'))
end
return 1
