#!lua name=icaze

-- A value is "day count from until ask": the local day start the count is for, the grants
-- counted on that day, the latest permit's window and the id of the ask that made it.
-- Returns its fields (0 0 0 0 0 for a missing key), or nil if it is not in this form.
local function parse(value)
  if not value then
    return 0, 0, 0, 0, '0'
  end
  local day, count, from, till, ask = string.match(value, '^(%-?%d+) (%d+) (%-?%d+) (%-?%d+) (%x+)$')
  if not day then
    return nil
  end
  return tonumber(day), tonumber(count), tonumber(from), tonumber(till), ask
end

-- Sets `key` to `value` only if it is missing, and returns what it held (false if nothing):
-- the first ask of a document's day finds no key, and is decided with this one command.
local function claim(key, value, exat)
  return redis.call('SET', key, value, 'NX', 'EXAT', exat, 'GET')
end

-- The verdict for an ask that finds a permit still active: its own grant if its id made it
-- (a retry after a lost reply), else the same permit again.
local function active(from, till, maker, id)
  if maker == id then
    return 0, from, till
  end
  return 1, from, till
end

-- One ask, by the engine's rules: its verdict as three numbers (see `grant`). `group` and
-- `code` are its keys (the same key when the code has a group of its own); `now`, `till`,
-- `exat` and `id` are strings as given.
local function decide(group, code, now, till, limit, day_start, exat, id)
  local t = tonumber(now)
  if limit == 0 then
    -- Nothing can be granted: only an active permit is answered.
    local day, _, from, ends, maker = parse(redis.call('GET', code))
    if not day then
      return 3, 0, 0
    end
    if ends > t then
      return active(from, ends, maker, id)
    end
    return 2, 0, 0
  end
  if code == group then
    local old = claim(group, day_start .. ' 1 ' .. now .. ' ' .. till .. ' ' .. id, exat)
    if not old then
      return 0, t, tonumber(till)
    end
    local day, count, from, ends, maker = parse(old)
    if not day then
      return 3, 0, 0
    end
    if ends > t then
      return active(from, ends, maker, id)
    end
    if day < tonumber(day_start) then
      day, count = tonumber(day_start), 0
    end
    if limit > 0 and count >= limit then
      return 2, limit, 0
    end
    redis.call('SET', group, string.format('%d %d %s %s %s', day, count + 1, now, till, id), 'EXAT', exat)
    return 0, t, tonumber(till)
  end
  -- A code sharing its group: the permit is claimed first (tentatively if the key was
  -- missing), then the group's count decides.
  local permit = '0 0 ' .. now .. ' ' .. till .. ' ' .. id
  local old = claim(code, permit, exat)
  if old then
    local kept, _, from, ends, maker = parse(old)
    if not kept then
      return 3, 0, 0
    end
    if ends > t then
      return active(from, ends, maker, id)
    end
  end
  local counted = claim(group, day_start .. ' 1 0 0 0', exat)
  if counted then
    local day, count = parse(counted)
    local refused = nil
    if not day then
      refused = 3
    else
      if day < tonumber(day_start) then
        day, count = tonumber(day_start), 0
      end
      if limit > 0 and count >= limit then
        refused = 2
      end
    end
    if refused then
      if not old then
        redis.call('DEL', code)
      end
      if refused == 2 then
        return 2, limit, 0
      end
      return 3, 0, 0
    end
    redis.call('SET', group, string.format('%d %d 0 0 0', day, count + 1), 'EXAT', exat)
  end
  if old then
    redis.call('SET', code, permit, 'EXAT', exat)
  end
  return 0, t, tonumber(till)
end

-- Any number of asks, decided in order.
-- KEYS: per ask, its quota group's key and its code's grant key, and with a permit index
-- (standalone Redis) the key of the permit id a grant would get.
-- ARGV: per ask, now, until, limit (-1 for none), day_start, expire_at (Unix seconds) and
-- the ask's id (hex, never 0; the same for every attempt of one ask), and with a permit
-- index the value to keep under the permit key once granted ("DOCUMENT CODE FROM UNTIL").
-- Returns three integers per ask, flat: 0 from until granted, 1 from until still active,
-- 2 limit 0 the daily limit is used, 3 0 0 a key holds a value icaze did not write
-- (nothing changed for that ask).
local function grant(keys, args)
  local per_key, per_arg = 2, 6
  if #keys % 3 == 0 and #args == 7 * (#keys / 3) and #keys > 0 then
    per_key, per_arg = 3, 7
  end
  local asks = #keys / per_key
  if #keys % per_key ~= 0 or #args ~= per_arg * asks then
    return redis.error_reply('ERR icaze_grant takes 2 keys and 6 arguments per ask, or 3 and 7')
  end
  local out = {}
  for i = 1, asks do
    local a = per_arg * (i - 1)
    local k = per_key * (i - 1)
    local o = 3 * (i - 1)
    local verdict, from, till = decide(keys[k + 1], keys[k + 2], args[a + 1],
      args[a + 2], tonumber(args[a + 3]), args[a + 4], args[a + 5], args[a + 6])
    if per_key == 3 and verdict == 0 and from == tonumber(args[a + 1]) then
      -- The permit index, in the same call as the grant: any node can verify the id.
      redis.call('SET', keys[k + 3], args[a + 7], 'EXAT', args[a + 5])
    end
    out[o + 1], out[o + 2], out[o + 3] = verdict, from, till
  end
  return out
end

redis.register_function('icaze_grant', grant)

-- max_documents_per_phone for every node: KEYS[1] is the phone's set of documents of the
-- day (icaze:phone:{TAG}); ARGV: the document, the limit, expire_at. Returns 1 if the phone
-- may have the document (it has it already, or had fewer than the limit, and now has it),
-- 0 if not (nothing changed).
local function phone(keys, args)
  if #keys ~= 1 or #args ~= 3 then
    return redis.error_reply('ERR icaze_phone takes 1 key and 3 arguments')
  end
  if redis.call('SISMEMBER', keys[1], args[1]) == 1 then
    return 1
  end
  if redis.call('SCARD', keys[1]) >= tonumber(args[2]) then
    return 0
  end
  redis.call('SADD', keys[1], args[1])
  redis.call('EXPIREAT', keys[1], args[3])
  return 1
end

redis.register_function('icaze_phone', phone)

-- A status request's index: KEYS[1] is a document's list of today's permits
-- (icaze:{DOCUMENT}:status); ARGV: one entry "CODE FROM UNTIL PHONE" and expire_at. The
-- entry is added once, whatever the retries.
local function note(keys, args)
  if #keys ~= 1 or #args ~= 2 then
    return redis.error_reply('ERR icaze_note takes 1 key and 2 arguments')
  end
  if not redis.call('LPOS', keys[1], args[1]) then
    redis.call('RPUSH', keys[1], args[1])
  end
  redis.call('EXPIREAT', keys[1], args[2])
  return 1
end

redis.register_function('icaze_note', note)
