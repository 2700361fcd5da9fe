-- POST /api/token/refresh/ of SimpleJWT with a rotating refresh token, which travels in the JSON
-- body both ways. Run with one connection per thread (-t N -c N), as refresh.lua: each thread is
-- one client with its own token.
local tokens = {}
local next_thread = 1

function setup(thread)
  thread:set("token", tokens[next_thread])
  next_thread = next_thread + 1
end

-- setup() runs in the main Lua state before the threads; load the tokens there from the env.
for token in string.gmatch(os.getenv("REFRESH_TOKENS") or "", "[^,]+") do table.insert(tokens, token) end

request = function()
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, '{"refresh":"' .. token .. '"}')
end

response = function(status, headers, body)
  local value = string.match(body, '"refresh"%s*:%s*"([^"]+)"')
  if value then token = value end
end
