-- GET of a random id: wrk ... -s bench/wrk_get.lua URL -- <path with %d> <max id> <seed>
-- e.g. -- /grommets/%d 1000 42  or  -- "/widgets/%d?include=grommets" 300 42
local template, max_id

function init(args)
  template = args[1]
  max_id = tonumber(args[2])
  math.randomseed(tonumber(args[3]) or os.time())
end

function request()
  return wrk.format("GET", string.format(template, math.random(1, max_id)))
end
