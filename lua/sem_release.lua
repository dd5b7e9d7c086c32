-- sem_release.lua: give back every permit a holder leased.
--
-- KEYS[1] holders hash  holder -> permits leased
-- KEYS[2] leases zset   holder scored by lease deadline
--
-- ARGV[1] holder id
--
-- Returns the number of permits given back (0 if the holder held none, for
-- example because its lease had already expired).

local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return held
