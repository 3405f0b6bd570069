-- Returns a lease's nonce to the free set (dropped below the chain floor); idempotent.
-- KEYS: state, free, leases, committed   ARGV: lease member, nonce, lease_id
-- Returns 1 (released), 0 (not held: no-op) or 2 (already committed).
if redis.call('ZREM', KEYS[3], ARGV[1]) == 1 then
  local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
  if tonumber(ARGV[2]) >= floor then
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
  end
  return 1
end
if redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[3] then
  return 2
end
return 0
