-- POST /batch {"load": [...]} of <count> DISTINCT random GETs.
-- wrk ... -s bench/wrk_batch.lua URL -- <path with %d> <max id> <count> <seed>
local template, max_id, count
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  -- Headers given with -H (the bearer token) go on these requests too.
  for name, value in pairs(wrk.headers) do headers[name] = headers[name] or value end
  template = args[1]
  max_id = tonumber(args[2])
  count = tonumber(args[3])
  math.randomseed(tonumber(args[4]) or os.time())
end

function request()
  local taken, paths = {}, {}
  while #paths < count do
    local id = math.random(1, max_id)
    if not taken[id] then
      taken[id] = true
      paths[#paths + 1] = '"' .. string.format(template, id) .. '"'
    end
  end
  return wrk.format("POST", "/batch", headers, '{"load":[' .. table.concat(paths, ",") .. ']}')
end
