//! Lua for the shared breaker. Every script takes the same three keys (state hash, window,
//! probe leases) and the same ten configuration arguments, then its own arguments from
//! ARGV[11]; every script answers the same 12-field snapshot.

pub(crate) const PRELUDE: &str = r#"
local kind = ARGV[1]
local size = tonumber(ARGV[2])
local min_calls = tonumber(ARGV[3])
local fail_thr = tonumber(ARGV[4])
local slow_thr = tonumber(ARGV[5])
local consec_limit = tonumber(ARGV[6])
local open_timeout = tonumber(ARGV[7])
local permits = tonumber(ARGV[8])
local succ_thr = tonumber(ARGV[9])
local lease_ttl = tonumber(ARGV[10])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local v = redis.call('HMGET', KEYS[1], 'state', 'gen', 'opened_at', 'consec', 'succ', 'changed_at', 'from')
local st = {
  state = v[1] or 'CLOSED', gen = tonumber(v[2] or '0'), opened_at = tonumber(v[3] or '0'),
  consec = tonumber(v[4] or '0'), succ = tonumber(v[5] or '0'),
  changed_at = tonumber(v[6] or '-1'), from = v[7] or ''
}

local function transition(to)
  st.from = st.state
  st.state = to
  st.gen = st.gen + 1
  st.opened_at = now
  st.consec = 0
  st.succ = 0
  st.changed_at = now
  redis.call('HSET', KEYS[1], 'state', to, 'gen', st.gen, 'opened_at', now, 'consec', 0,
    'succ', 0, 'changed_at', now, 'from', st.from)
  redis.call('DEL', KEYS[2], KEYS[3])
end

local function poll()
  if st.state == 'OPEN' and now >= st.opened_at + open_timeout then
    transition('HALF_OPEN')
  end
end

local function totals()
  if kind == 'c' then
    local s = redis.call('GET', KEYS[2]) or ''
    local _, f = string.gsub(s, '[13]', '')
    local _, sl = string.gsub(s, '[23]', '')
    return #s, f, sl
  end
  local sec = math.floor(now / 1000)
  local all = redis.call('HGETALL', KEYS[2])
  local c, f, sl = 0, 0, 0
  for i = 1, #all, 2 do
    local field = all[i]
    local s = tonumber(string.sub(field, 2))
    if s + size <= sec then
      redis.call('HDEL', KEYS[2], field)
    else
      local n = tonumber(all[i + 1])
      local k = string.sub(field, 1, 1)
      if k == 'c' then c = c + n elseif k == 'f' then f = f + n else sl = sl + n end
    end
  end
  return c, f, sl
end

local function snapshot(granted)
  local c, f, sl = 0, 0, 0
  if st.state == 'CLOSED' then c, f, sl = totals() end
  local remaining = -1
  if st.state == 'OPEN' then remaining = math.max(0, st.opened_at + open_timeout - now) end
  local in_flight = 0
  if st.state == 'HALF_OPEN' then in_flight = redis.call('ZCOUNT', KEYS[3], now + 1, '+inf') end
  local ago = -1
  if st.changed_at >= 0 then ago = now - st.changed_at end
  return { st.state, st.gen, remaining, c, f, sl, st.consec, in_flight, st.succ, ago, st.from, granted }
end
"#;

/// ARGV[11] = generation the batch was recorded under, ARGV[12] = outcomes, one character
/// each: `0` success, `1` failure, `2` slow success, `3` slow failure.
pub(crate) const RECORD: &str = r#"
local batch_gen = tonumber(ARGV[11])
local batch = ARGV[12]
if st.state == 'CLOSED' and batch_gen == st.gen and #batch > 0 then
  local consec, peak = st.consec, 0
  local nc, nf, ns = 0, 0, 0
  for i = 1, #batch do
    local ch = string.sub(batch, i, i)
    nc = nc + 1
    if ch == '1' or ch == '3' then
      nf = nf + 1
      consec = consec + 1
      if consec > peak then peak = consec end
    else
      consec = 0
    end
    if ch == '2' or ch == '3' then ns = ns + 1 end
  end
  st.consec = consec
  redis.call('HSET', KEYS[1], 'consec', consec)
  if kind == 'c' then
    local s = (redis.call('GET', KEYS[2]) or '') .. batch
    if #s > size then s = string.sub(s, -size) end
    redis.call('SET', KEYS[2], s)
  else
    local sec = math.floor(now / 1000)
    redis.call('HINCRBY', KEYS[2], 'c' .. sec, nc)
    if nf > 0 then redis.call('HINCRBY', KEYS[2], 'f' .. sec, nf) end
    if ns > 0 then redis.call('HINCRBY', KEYS[2], 's' .. sec, ns) end
    redis.call('PEXPIRE', KEYS[2], (size + 1) * 1000)
  end
  local trip = consec_limit > 0 and peak >= consec_limit
  if not trip then
    local c, f, sl = totals()
    if c > 0 and c >= min_calls then
      if fail_thr >= 0 and f * 100 >= fail_thr * c then trip = true end
      if slow_thr >= 0 and sl * 100 >= slow_thr * c then trip = true end
    end
  end
  if trip then transition('OPEN') end
end
poll()
return snapshot(0)
"#;

/// ARGV[11] = lease token. Granted: 1 probe lease, 2 CLOSED/DISABLED (no lease), 0 rejected.
pub(crate) const ACQUIRE: &str = r#"
local token = ARGV[11]
poll()
local granted = 0
if st.state == 'HALF_OPEN' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) < permits then
    redis.call('ZADD', KEYS[3], now + lease_ttl, token)
    redis.call('PEXPIRE', KEYS[3], lease_ttl)
    granted = 1
  end
elseif st.state == 'CLOSED' or st.state == 'DISABLED' then
  granted = 2
end
return snapshot(granted)
"#;

/// ARGV[11] = lease token, ARGV[12] = generation, ARGV[13] = `s`, `f` or `i` (ignored).
pub(crate) const PROBE: &str = r#"
local token = ARGV[11]
local gen = tonumber(ARGV[12])
local outcome = ARGV[13]
local removed = redis.call('ZREM', KEYS[3], token)
if removed == 1 and st.state == 'HALF_OPEN' and st.gen == gen then
  if outcome == 'f' then
    transition('OPEN')
  elseif outcome == 's' then
    st.succ = st.succ + 1
    redis.call('HSET', KEYS[1], 'succ', st.succ)
    if st.succ >= succ_thr then transition('CLOSED') end
  end
end
poll()
return snapshot(0)
"#;

/// ARGV[11] = target state.
pub(crate) const FORCE: &str = r#"
local target = ARGV[11]
if target == 'CLOSED' or target ~= st.state then
  transition(target)
end
return snapshot(0)
"#;
