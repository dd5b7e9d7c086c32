-- sem_acquire.lua: lease up to one block of permits from a distributed semaphore.
--
-- KEYS[1] holders hash  holder -> permits leased
-- KEYS[2] leases zset   holder scored by lease deadline (Unix ms, server time)
--
-- ARGV[1] holder id (unique per process)
-- ARGV[2] block: the most permits to add in this call
-- ARGV[3] capacity: the most permits all holders together may lease
-- ARGV[4] lease TTL in ms
--
-- Returns {granted, held}: granted is 0..block (0 = the semaphore is full),
-- held is the caller's total lease after this call. held can be less than the
-- caller believed it had if its lease had expired and was purged: the caller
-- must then trust held.
--
-- Holders whose deadline has passed are purged first, so a crashed process's
-- permits come back by themselves one TTL after its last renewal.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, h in ipairs(expired) do
  redis.call('HDEL', KEYS[1], h)
  redis.call('ZREM', KEYS[2], h)
end

local used = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  used = used + tonumber(v)
end

local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - used)
local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if grant <= 0 then
  return {0, held}
end
held = redis.call('HINCRBY', KEYS[1], ARGV[1], grant)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
return {grant, held}
