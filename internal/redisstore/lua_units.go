package redisstore

// luaUnits is exact arithmetic on diff units (share difficulty × 1e8, as
// decimal strings) for the scripts that sum them: the share ledger's window
// and round totals, and the PPLNS snapshot. Lua numbers are doubles, exact
// only below 2^53, and a window's Σ units on mainnet is around 10^22. A
// number is a pair (hi, lo) in base 10^12, each part an exact double; that
// covers values up to ~9·10^27 units (9·10^19 difficulty, some 10^5 times
// today's mainnet difficulty) and keeps per-entry loops free of table
// allocations. parse returns nil past 27 digits, so a script refuses such a
// value rather than round it; a missing value (false or nil) parses as 0.
const luaUnits = `
local B = 1000000000000
local HMAX = 9000000000000000
local function parse(s)
  if not s then return 0, 0 end
  local n = #s
  if n <= 12 then return 0, tonumber(s) end
  if n > 27 then return nil end
  return tonumber(string.sub(s, 1, n - 12)), tonumber(string.sub(s, n - 11))
end
local function add(ah, al, bh, bl)
  local h, l = ah + bh, al + bl
  if l >= B then l = l - B; h = h + 1 end
  return h, l
end
local function sub(ah, al, bh, bl)
  local h, l = ah - bh, al - bl
  if l < 0 then l = l + B; h = h - 1 end
  return h, l
end
local function lt(ah, al, bh, bl)
  if ah ~= bh then return ah < bh end
  return al < bl
end
local function ge(ah, al, bh, bl)
  return not lt(ah, al, bh, bl)
end
local function fmt(h, l)
  if h == 0 then return string.format('%d', l) end
  return string.format('%d%012d', h, l)
end
`
