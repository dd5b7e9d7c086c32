-- node_renew.lua: extend a Snowflake node-id lease, only if the caller still holds it.
--
-- KEYS[1] node key  STRING holder, with a PX TTL
--
-- ARGV[1] holder id
-- ARGV[2] lease TTL in ms
--
-- Returns 1 if the lease was extended, 2 if the key was missing and the
-- caller took it again, 0 if it belongs to another holder (the lease is lost
-- and the caller must stop making ids).
--
-- A missing key means Redis lost it (restarted empty, or a failover lost the
-- write) or the lease lapsed. Nobody holds the id at this instant, so taking
-- it back is as safe as the first SET NX was: a process that lapsed stopped
-- minting at its local deadline, before the key could expire. Treating it as
-- lost instead would stop every gateway for good after one empty restart.

local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
