-- POST /api/auth/refresh with a rotating cookie. Run with one connection per thread
-- (-t N -c N): each thread is one client with its own session, as a browser tab would be.
local tokens = {}
local next_thread = 1

function setup(thread)
  thread:set("token", tokens[next_thread])
  next_thread = next_thread + 1
end

-- setup() runs in the main Lua state before the threads; load the tokens there from the env.
for token in string.gmatch(os.getenv("REFRESH_TOKENS") or "", "[^,]+") do table.insert(tokens, token) end

request = function()
  return wrk.format("POST", nil, {["Cookie"] = "refresh_token=" .. token})
end

response = function(status, headers, body)
  local cookie = headers["Set-Cookie"]
  if cookie then
    local value = string.match(cookie, "refresh_token=([^;]*)")
    if value and #value > 0 then token = value end
  end
end
