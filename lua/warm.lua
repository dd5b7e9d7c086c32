-- warm.lua: publish an item's stock and metadata, exactly once.
--
-- KEYS[1] item hash
--
-- ARGV[1] total units (also the initial stock)
-- ARGV[2] price in cents
-- ARGV[3] start_ms  (window start, inclusive, Unix ms)
-- ARGV[4] end_ms    (window end, exclusive, Unix ms)
-- ARGV[5] per-user limit (0 = no limit)
-- ARGV[6] payment timeout in seconds
--
-- Returns 1 if the hash was created, 0 if it already existed. An existing hash
-- is never touched: publishing twice must not reset stock that was sold.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1],
  'stock', ARGV[1], 'total', ARGV[1], 'price', ARGV[2],
  'start_ms', ARGV[3], 'end_ms', ARGV[4], 'limit', ARGV[5], 'timeout_s', ARGV[6])
return 1
