-- buy.lua: one flash-sale buy attempt, checked and applied atomically.
--
-- KEYS[1] item hash          stock, total, price, start_ms, end_ms, limit, timeout_s
-- KEYS[2] buyers hash        user_id -> live units held
-- KEYS[3] reservations hash  order_id -> reservation JSON
-- KEYS[4] reservation index  ZSET order_id scored by created_ms
-- KEYS[5] idempotency string (optional) -> order_id
--
-- ARGV[1] order_id  (decimal string; ids never become Lua numbers, which are doubles)
-- ARGV[2] user_id   (decimal string)
-- ARGV[3] quantity  (integer >= 1)
-- ARGV[4] idempotency TTL in seconds (used only with KEYS[5])
-- ARGV[5] activity_id (decimal string, copied into the reservation JSON)
-- ARGV[6] item_id     (decimal string, copied into the reservation JSON)
--
-- Returns a flat array whose first element is the code:
--   {0, available, created_ms, expire_ms, amount_cents}  OK: stock deducted, reservation written
--   {1, order_id, reservation_json | nil, available}     DUPLICATE: idempotency key seen, or this order id
--                                                        already reserved (the same call sent again, e.g.
--                                                        by a client retrying after a lost reply):
--                                                        nothing changed (a found reservation is
--                                                        rewritten as it is, so a WAIT after this
--                                                        call covers the first run's writes)
--   {2}                                                  NOT_PUBLISHED: item hash missing, or fenced
--                                                        after a Redis restart (see fence.lua), or
--                                                        found written by another cluster node (its
--                                                        nid is not this node's: a replica was
--                                                        promoted and may miss writes): then fenced
--                                                        here, and refused until rebuilt
--   {3}                                                  NOT_STARTED
--   {4}                                                  ENDED
--   {5, held, limit}                                     LIMIT_EXCEEDED
--   {6, available}                                       SOLD_OUT: stock < quantity, nothing changed
--
-- Checks run in this order and nothing is written before all of them pass, so a
-- refused attempt (including a double click) never burns stock.

local item = redis.call('HMGET', KEYS[1], 'stock', 'price', 'start_ms', 'end_ms', 'limit', 'timeout_s', 'fenced', 'nid')
if not item[1] or item[7] then
  return {2}
end
-- A failover: the state was written on another node and replicated here
-- asynchronously, so buys already answered may be missing. Checked on every
-- call, it holds even on a connection opened while this node was a replica.
if item[8] and item[8] ~= redis.call('CLUSTER', 'MYID') then
  redis.call('HSET', KEYS[1], 'fenced', '1')
  return {2}
end

-- A found reservation is written again as it is: the first run's writes
-- may not have reached the replicas yet, and a caller's WAIT counts only
-- what its connection wrote (a script that writes nothing leaves WAIT
-- confirming nothing), so the rewrite makes its WAIT cover them.
local function again(order_id, resv)
  if resv then
    redis.call('HSET', KEYS[3], order_id, resv)
  end
  return {1, order_id, resv, tonumber(item[1])}
end

if KEYS[5] then
  local earlier = redis.call('GET', KEYS[5])
  if earlier then
    return again(earlier, redis.call('HGET', KEYS[3], earlier))
  end
end

-- The same order id again is the same call sent again (ids are unique): a
-- client library may resend a script whose reply was lost. Answer as the
-- first run did and change nothing, so a resend never deducts twice.
local prior = redis.call('HGET', KEYS[3], ARGV[1])
if prior then
  return again(ARGV[1], prior)
end

-- Server time, so gateways with skewed clocks agree on the window.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(item[3]) then
  return {3}
end
if now >= tonumber(item[4]) then
  return {4}
end

local qty = tonumber(ARGV[3])
local limit = tonumber(item[5])
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if limit > 0 and held + qty > limit then
  return {5, held, limit}
end

local stock = tonumber(item[1])
if stock < qty then
  return {6, stock}
end

local amount = tonumber(item[2]) * qty
local expire = now + tonumber(item[6]) * 1000
local available = redis.call('HINCRBY', KEYS[1], 'stock', -qty)
redis.call('HINCRBY', KEYS[2], ARGV[2], qty)
redis.call('HSET', KEYS[3], ARGV[1], string.format(
  '{"order_id":"%s","activity_id":"%s","item_id":"%s","user_id":"%s","quantity":%d,"amount_cents":%d,"created_ms":%d,"expire_ms":%d}',
  ARGV[1], ARGV[5], ARGV[6], ARGV[2], qty, amount, now, expire))
redis.call('ZADD', KEYS[4], now, ARGV[1])
if KEYS[5] then
  redis.call('SET', KEYS[5], ARGV[1], 'EX', ARGV[4])
end
return {0, available, now, expire, amount}
