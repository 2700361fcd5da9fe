-- A credential-stuffing flood at POST /api/auth/login: wrong passwords for many accounts, each
-- request from another client address (X-Forwarded-For, believed only when auth trusts wrk's own
-- address), so the login throttle does not simply stop it. Prints the count of each status at the end.
local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("id", next_thread)
  table.insert(threads, thread)
  next_thread = next_thread + 1
end

function init(args)
  statuses = {}
  sent = 0
end

request = function()
  sent = sent + 1
  local email = string.format("flood-%d-%d@example.com", id, sent % 5000)
  local address = string.format("10.%d.%d.%d", id % 256, math.floor(sent / 256) % 256, sent % 256)
  local body = string.format('{"email":"%s","password":"wrong password %d"}', email, sent)
  return wrk.format(
    "POST", nil, {["Content-Type"] = "application/json", ["X-Forwarded-For"] = address}, body
  )
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  for status, count in pairs(totals) do
    io.write(string.format("status %d %d\n", status, count))
  end
end
