-- sem_renew.lua: extend a holder's lease and shrink it to what it still needs.
--
-- KEYS[1] holders hash  holder -> permits leased
-- KEYS[2] leases zset   holder scored by lease deadline (Unix ms, server time)
--
-- ARGV[1] holder id
-- ARGV[2] want: permits the holder wants to keep (never grows an existing lease)
-- ARGV[3] capacity
-- ARGV[4] lease TTL in ms
--
-- Returns {held, lost}: held is the holder's lease after this call; lost is 1
-- when the holder had no lease left (it expired and was purged), in which case
-- up to want permits were leased afresh, as far as capacity allows.
-- A holder left with 0 permits is removed from both keys.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, h in ipairs(expired) do
  redis.call('HDEL', KEYS[1], h)
  redis.call('ZREM', KEYS[2], h)
end

local want = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local lost = 0
local held
if cur > 0 then
  held = math.min(cur, want)
else
  if want > 0 then
    lost = 1
  end
  local used = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
    used = used + tonumber(v)
  end
  held = math.max(0, math.min(want, tonumber(ARGV[3]) - used))
end

if held > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], held)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return {held, lost}
