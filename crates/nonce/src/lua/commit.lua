-- Commits a batch of leases, each if it still holds its nonce; idempotent.
-- KEYS: leases, committed   ARGV: count, then count × (lease member, nonce, lease_id)
-- Returns one entry per lease: 1 (committed) or 0 (lease lost).
local out = {}
local count = tonumber(ARGV[1])
for i = 0, count - 1 do
  local member, n, id = ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i]
  if redis.call('ZREM', KEYS[1], member) == 1 then
    redis.call('HSET', KEYS[2], n, id)
    out[#out + 1] = 1
  elseif redis.call('HGET', KEYS[2], n) == id then
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
