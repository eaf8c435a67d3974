-- POST /grommets with a name no other request uses: a per-run tag (from the caller), a counter
-- and a random suffix.  wrk ... -s bench/wrk_post_grommet.lua URL -- <path> <tag> <seed>
local path, tag
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  -- Headers given with -H (the bearer token) go on these requests too.
  for name, value in pairs(wrk.headers) do headers[name] = headers[name] or value end
  path = args[1]
  tag = args[2]
  math.randomseed(tonumber(args[3]) or os.time())
end

function request()
  counter = counter + 1
  local name = string.format("bench-%s-%d-%08x", tag, counter, math.random(0, 0x7fffffff))
  local body = string.format(
    '{"name":"%s","material":"brass","diameter_mm":%d}', name, 1 + counter % 20)
  return wrk.format("POST", path, headers, body)
end
