-- fence.lua: stop selling an item whose Redis state may be stale.
--
-- Redis restarted from an append-only file can come back missing its last
-- second of writes: stock deducted by buys that were already answered 202
-- would be sold again. A fenced item answers NOT_PUBLISHED to the buy script
-- (the gateway says 503) until recovery rebuilds it from PostgreSQL.
--
-- KEYS[1] item hash
--
-- ARGV[1] none (the script takes no arguments)
--
-- Returns 1 if the item was fenced, 0 if it does not exist (a missing item
-- is not created: recovery rebuilds it anyway).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'fenced', '1')
return 1
