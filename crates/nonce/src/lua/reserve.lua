-- Leases nonces for a batch of callers: for each, the lowest free nonce, or `next`, after
-- reclaiming expired leases.
-- KEYS: state, free, leases   ARGV: count, then count × (ttl_ms, lease_id)
-- A lease is the member `nonce:lease_id:leased_ms` of the leases sorted set, scored by its
-- expiry: commit and release remove exactly the member their caller holds.
-- Returns strings: {leased_ms, synced (0/1), nonce_1, expires_ms_1, …, nonce_n, expires_ms_n}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_text = string.format('%.0f', now)

local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #expired > 0 then
  local floor_n = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
  for i = 1, #expired do
    redis.call('ZREM', KEYS[3], expired[i])
    local n = string.match(expired[i], '^(%d+):')
    if n and tonumber(n) >= floor_n then
      redis.call('ZADD', KEYS[2], n, n)
    end
  end
end

local out = {now_text, tostring(redis.call('HEXISTS', KEYS[1], 'floor'))}
local count = tonumber(ARGV[1])
for i = 0, count - 1 do
  local nonce
  local lowest = redis.call('ZPOPMIN', KEYS[2])
  if #lowest > 0 then
    nonce = lowest[1]
  else
    nonce = string.format('%.0f', redis.call('HINCRBY', KEYS[1], 'next', 1) - 1)
  end
  local expires = now + tonumber(ARGV[2 + 2 * i])
  redis.call('ZADD', KEYS[3], expires, nonce .. ':' .. ARGV[3 + 2 * i] .. ':' .. now_text)
  out[#out + 1] = nonce
  out[#out + 1] = string.format('%.0f', expires)
end
return out
