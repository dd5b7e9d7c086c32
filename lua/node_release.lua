-- node_release.lua: free a Snowflake node id, only if the caller still holds it.
--
-- KEYS[1] node key  STRING holder
--
-- ARGV[1] holder id
--
-- Returns 1 if the key was deleted, 0 if it was missing or held by another
-- holder (which is left untouched).

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
