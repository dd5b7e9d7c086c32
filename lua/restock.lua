-- restock.lua: give a cancelled order's units back, at most once per order.
--
-- KEYS[1] item hash          (field stock)
-- KEYS[2] buyers hash        user_id -> live units held
-- KEYS[3] reservations hash  order_id -> reservation JSON
-- KEYS[4] reservation index  ZSET order_id
-- KEYS[5] restocked set      order ids whose units were already given back
--
-- ARGV[1] order_id (decimal string)
-- ARGV[2] user_id  (decimal string)
-- ARGV[3] quantity (integer >= 1)
--
-- Returns:
--   {0, available}  OK: stock += quantity, the user's held units -= quantity,
--                   any reservation record of the order removed
--   {1, available}  DUPLICATE: this order was already restocked, nothing changed
--                   (the item's stock is rewritten as it is, so that the
--                   caller's WAIT covers the earlier return)
--   {2}             NOT_PUBLISHED: item hash missing (Redis lost its state) or
--                   fenced (Redis restarted from a possibly stale file, or
--                   a replica was promoted: nid is not this node's, then it
--                   is fenced here, as buy.lua does);
--                   nothing is written: the rebuild from PostgreSQL accounts
--                   for the order, and a retry after it returns the units
--
-- The restocked set is what makes timers, sweepers and user cancels racing on
-- one order return its units exactly once, even if the caller crashed after
-- this script and before recording the return elsewhere.

-- A fenced item is about to be overwritten by a rebuild that may have read
-- this order as live: returning units now would be erased with it.
local item = redis.call('HMGET', KEYS[1], 'stock', 'fenced', 'nid')
if not item[1] or item[2] then
  return {2}
end
if item[3] and item[3] ~= redis.call('CLUSTER', 'MYID') then
  redis.call('HSET', KEYS[1], 'fenced', '1')
  return {2}
end
if redis.call('SADD', KEYS[5], ARGV[1]) == 0 then
  -- A write that changes nothing (HINCRBY 0 is replicated, SADD of a
  -- member is not), so a WAIT after this retry covers the earlier return,
  -- which may not have reached the replicas yet.
  return {1, redis.call('HINCRBY', KEYS[1], 'stock', 0)}
end

local qty = tonumber(ARGV[3])
local available = redis.call('HINCRBY', KEYS[1], 'stock', qty)
if redis.call('HINCRBY', KEYS[2], ARGV[2], -qty) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return {0, available}
