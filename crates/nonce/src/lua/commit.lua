-- Commits a lease if it still holds its nonce; idempotent.
-- KEYS: leases, committed   ARGV: lease member, nonce, lease_id
-- Returns 1 (committed) or 0 (lease lost).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then
  return 1
end
return 0
