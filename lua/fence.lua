-- fence.lua: stop selling an item whose Redis state may be stale.
--
-- Redis restarted from an append-only file can come back missing its last
-- second of writes, and a promoted replica can miss the writes its master
-- had not yet sent: stock deducted by buys that were already answered 202
-- would be sold again. warm.lua and rebuild.lua record in the item hash, as
-- rid, the run_id and master_replid of the server that wrote it; a server
-- with another run_id (a restart) or replid (a restart, or a promotion,
-- also of a node failed over and back) holds state that may not be the
-- state it wrote. A fenced item answers NOT_PUBLISHED to
-- the buy script (the gateway says 503) until recovery rebuilds it from
-- PostgreSQL.
--
-- KEYS[1] item hash
--
-- ARGV[1] the holder id "<run_id>:<master_replid>" of the server this script
--         runs on (the caller read both with INFO on the same connection),
--         or "" to have the script read them itself (a caller that sends it
--         through a cluster client and does not know which node runs it)
--
-- Returns 1 if this call fenced the item, 0 if it does not exist (a missing
-- item is not created: recovery rebuilds it anyway), is already fenced, or
-- its rid is ARGV[1]. An item with no rid (warmed before rid was recorded)
-- counts as written elsewhere; one whose rid is a run_id alone (written
-- before rid carried the replid) is compared by run_id.

local rid = ARGV[1]
if rid == '' then
  rid = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') .. ':' ..
    string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')
end
local item = redis.call('HMGET', KEYS[1], 'stock', 'fenced', 'rid')
if not item[1] or item[2] or item[3] == rid then
  return 0
end
-- An item written before rid carried the replid: its run_id alone.
if item[3] and not string.find(item[3], ':', 1, true) and item[3] .. ':' == string.sub(rid, 1, #item[3] + 1) then
  return 0
end
redis.call('HSET', KEYS[1], 'fenced', '1')
return 1
