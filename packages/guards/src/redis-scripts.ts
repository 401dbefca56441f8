/**
 * The Redis store's key layout and Lua scripts. Every key of one decision carries the same hash tag
 * (`{key}`), so on Redis Cluster they live in one slot and one script may touch them all. Every write sets
 * an expiry: nothing outlives its purpose.
 *
 * Layout, for prefix `sock:` and key `203.0.113.7`:
 * - `sock:{203.0.113.7}:r:<table>`  GCRA theoretical arrival time (ms); expires when the bucket is full again
 * - `sock:{203.0.113.7}:c`          open connections, a hash of node id → `count:leaseUntil`; each node
 *                                    renews its leases, so a node that dies stops counting after the lease
 * - `sock:{sock:bans}:rec` / `:idx` every ban record (hash key → `until:offences:forgetAt`) and their
 *                                    forget times (sorted set), in one slot: a resync reads one hash
 * - `sock:{sock:bans}:s:203.0.113.7` strikes, in the bans' slot so strike and ban are one script;
 *                                    expires `window` after the first strike
 * - channel `sock:bans`              ban and unban broadcasts
 * Times inside scripts come from Redis (`TIME`), so hosts with skewed clocks share one clock.
 */

/** Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag (or the whole key) modulo 16384. */
export function redisKeySlot(key: string | Buffer): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  return crc16(bytes, start, end) & 16383;
}

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** CRC16-CCITT (XMODEM), as Redis Cluster uses it. */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!) & 0xffff;
  return crc;
}

/** Braces would change the hash tag (a key never contains them, a prefix or table name could). */
function clean(part: string): string {
  return part.replace(/[{}]/g, '_');
}

/** The Redis keys of one guards key (all in one slot). */
export function redisKeys(prefix: string, key: string) {
  const base = `${clean(prefix)}{${clean(key) || '_'}}`;
  return {
    rate: (table: string) => `${base}:r:${clean(table)}`,
    conns: `${base}:c`,
  };
}

/** The ban record hash, its forget-time index (one slot), and the broadcast channel. */
export function redisBanKeys(prefix: string) {
  const p = clean(prefix);
  const tag = `${p}{${p}bans}`;
  return {
    records: `${tag}:rec`,
    index: `${tag}:idx`,
    epoch: `${tag}:epoch`,
    channel: `${p}bans`,
    // Strikes live in the bans' slot: one script reads a key's strikes and its ban (Redis Cluster too).
    strikes: (key: string) => `${tag}:s:${clean(key) || '_'}`,
  };
}

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** GCRA, as the memory store does it: returns 0 (taken) or the ms until it would be. */
const GCRA = `local function gcra(key, cost, em, burst)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local nxt = tat + cost * em
  local tol = burst * em
  if nxt - now > tol then
    local w = math.ceil(nxt - tol - now)
    if w < 1 then w = 1 end
    return w
  end
  redis.call('SET', key, string.format('%.3f', nxt), 'PX', math.max(1, math.ceil(nxt - now)))
  return 0
end`;

/**
 * The sum of live leases in a connection hash (expired ones are deleted) and this node's own count.
 * Field values are `count:leaseUntil`.
 */
const LEASES = `local function leases(key, node)
  local f = redis.call('HGETALL', key)
  local total, mine = 0, 0
  for i = 1, #f, 2 do
    local v = f[i + 1]
    local sep = string.find(v, ':', 1, true)
    local c = tonumber(string.sub(v, 1, sep - 1))
    local exp = tonumber(string.sub(v, sep + 1))
    if exp <= now then
      redis.call('HDEL', key, f[i])
    else
      total = total + c
      if f[i] == node then mine = c end
    end
  end
  return total, mine
end
local function setLease(key, node, count, lease)
  if count <= 0 then
    redis.call('HDEL', key, node)
  else
    redis.call('HSET', key, node, string.format('%d:%d', count, now + lease))
    redis.call('PEXPIRE', key, lease)
  end
end`;

/**
 * Accept in one round trip. KEYS: rate bucket, connection hash. ARGV: node, emissionMs (0: no rate),
 * burst, perKey (-1: no count), leaseMs. Returns {wait, acquired}: acquired 0 none, 1 ok, 2 limit.
 */
export const ADMIT = `${NOW}
${GCRA}
${LEASES}
local em = tonumber(ARGV[2])
if em > 0 then
  local w = gcra(KEYS[1], 1, em, tonumber(ARGV[3]))
  if w > 0 then return {w, 0} end
end
local max = tonumber(ARGV[4])
if max < 0 then return {0, 0} end
local total, mine = leases(KEYS[2], ARGV[1])
if total >= max then return {0, 2} end
setLease(KEYS[2], ARGV[1], mine + 1, tonumber(ARGV[5]))
return {0, 1}`;

/** KEYS: bucket. ARGV: cost, emissionMs, burst. Returns the wait. */
export const TAKE = `${NOW}
${GCRA}
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))`;

/** KEYS: connection hash. ARGV: node, leaseMs. One connection fewer for this node. */
export const RELEASE = `${NOW}
${LEASES}
local total, mine = leases(KEYS[1], ARGV[1])
setLease(KEYS[1], ARGV[1], mine - 1, tonumber(ARGV[2]))
return mine - 1`;

/** KEYS: connection hash. ARGV: node, count (-1: renew as is), leaseMs. */
export const SYNC = `${NOW}
${LEASES}
local total, mine = leases(KEYS[1], ARGV[1])
local n = tonumber(ARGV[2])
if n < 0 then n = mine end
setLease(KEYS[1], ARGV[1], n, tonumber(ARGV[3]))
return n`;

/**
 * KEYS: ban records, index. ARGV: key, until, offences, forgetAt (all empty: delete), channel, message,
 * merge ('1': only if there is no record, or one that ends sooner; a skipped merge broadcasts nothing). Drops up to 100 forgotten records first, stores (or deletes) the record, keeps both keys' expiry at the
 * latest forget time, and broadcasts. Returns 1 when a delete found a record.
 */
export const BAN = `${NOW}
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for i = 1, #old do
  redis.call('HDEL', KEYS[1], old[i])
  redis.call('ZREM', KEYS[2], old[i])
end
local found = 0
if ARGV[4] == '' then
  found = redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  if ARGV[7] == '1' then
    local cur = redis.call('HGET', KEYS[1], ARGV[1])
    if cur and tonumber(string.sub(cur, 1, string.find(cur, ':', 1, true) - 1)) >= tonumber(ARGV[2]) then
      return 0
    end
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #last == 2 and tonumber(last[2]) > now then
  local ttl = math.ceil(tonumber(last[2]) - now)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return found`;

/** The record of `ARGV[1]` in the ban hash KEYS[BAN_REC]: until, offences, forgetAt (nil when none or forgotten). */
const RECORD = `local function record(hash, key)
  local cur = redis.call('HGET', hash, key)
  if not cur then return nil end
  local a = string.find(cur, ':', 1, true)
  local b = string.find(cur, ':', a + 1, true)
  local u, o, f = tonumber(string.sub(cur, 1, a - 1)), tonumber(string.sub(cur, a + 1, b - 1)), tonumber(string.sub(cur, b + 1))
  if f <= now then return nil end
  return u, o, f
end
local function store(hash, index, key, u, o, f, channel, node, reason)
  redis.call('HSET', hash, key, string.format('%d:%d:%d', u, o, f))
  redis.call('ZADD', index, f, key)
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if #last == 2 and tonumber(last[2]) > now then
    local ttl = math.ceil(tonumber(last[2]) - now)
    redis.call('PEXPIRE', hash, ttl)
    redis.call('PEXPIRE', index, ttl)
  end
  redis.call('PUBLISH', channel, cjson.encode({node = node, key = key, ['until'] = u, offences = o, forgetAt = f, reason = reason}))
end
local function length(o, dur, factor, max)
  local ms = math.floor(dur * factor ^ (o - 1) + 0.5)
  if ms > max then ms = max end
  return ms
end`;

/**
 * Strike and ban in one step (the rules of ban-rules.ts). KEYS: strikes of the strike key, ban records,
 * their index. ARGV: ban key, weight, windowMs, threshold, durationMs, factor, maxMs, forgetMs, channel,
 * node, reason. Returns {state, strikes, until, offences, forgetAt}: state 0 counted, 1 banned now,
 * 2 the ban key was banned already (nothing counted).
 */
export const STRIKE_BAN = `${NOW}
${RECORD}
local key = ARGV[1]
local u, o, f = record(KEYS[2], key)
if u and u > now then return {2, 0, u, o, f} end
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if n < tonumber(ARGV[4]) then return {0, n, 0, 0, 0} end
redis.call('DEL', KEYS[1])
o = (o or 0) + 1
u = now + length(o, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
f = u + tonumber(ARGV[8])
store(KEYS[2], KEYS[3], key, u, o, f, ARGV[9], ARGV[10], ARGV[11])
return {1, n, u, o, f}`;

/**
 * Ban in one step, never shortening. KEYS: ban records, index. ARGV: key, durationMs ('' for the
 * escalating length), base durationMs, factor, maxMs, forgetMs, channel, node, reason.
 * Returns {changed, until, offences, forgetAt}.
 */
export const PUT_BAN = `${NOW}
${RECORD}
local key = ARGV[1]
local u, o, f = record(KEYS[1], key)
local off = (o or 0) + 1
local ms
if ARGV[2] == '' then ms = length(off, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])) else ms = tonumber(ARGV[2]) end
local nu = now + ms
if u and u >= nu then return {0, u, o, f} end
local nf = nu + tonumber(ARGV[6])
store(KEYS[1], KEYS[2], key, nu, off, nf, ARGV[7], ARGV[8], ARGV[9])
return {1, nu, off, nf}`;
