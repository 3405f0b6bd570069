-- Commits a lease if it still holds its nonce; idempotent.
-- KEYS: leases, expiry, committed, committed_idx   ARGV: nonce, lease_id
-- Returns 1 (committed) or 0 (lease lost).
local n = ARGV[1]
if redis.call('HGET', KEYS[3], n) == ARGV[2] then
  return 1
end
local rec = redis.call('HGET', KEYS[1], n)
if rec and string.sub(rec, 1, 32) == ARGV[2] then
  redis.call('HDEL', KEYS[1], n)
  redis.call('ZREM', KEYS[2], n)
  redis.call('HSET', KEYS[3], n, ARGV[2])
  redis.call('ZADD', KEYS[4], n, n)
  return 1
end
return 0
