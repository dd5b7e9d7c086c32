-- node_renew.lua: extend a Snowflake node-id lease, only if the caller still holds it.
--
-- KEYS[1] node key  STRING holder, with a PX TTL
--
-- ARGV[1] holder id
-- ARGV[2] lease TTL in ms
--
-- Returns 1 if the lease was extended, 0 if the key is missing or now belongs
-- to another holder (the lease is lost and the caller must stop making ids).

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
