-- POST /api/auth/refresh of DPoP-bound sessions, each request with a proof of its own (a new jti).
-- A Lua script cannot sign ES256, so bench/dpop_bench.py signs the proofs beforehand: one file per
-- thread, one proof a line. Run with one connection per thread (-t N -c N), as refresh.lua.
local tokens = {}
local next_thread = 1

function setup(thread)
  thread:set("token", tokens[next_thread])
  thread:set("proof_file", os.getenv("DPOP_PROOFS_DIR") .. "/" .. next_thread .. ".txt")
  next_thread = next_thread + 1
end

for token in string.gmatch(os.getenv("REFRESH_TOKENS") or "", "[^,]+") do table.insert(tokens, token) end

function init(args)
  proofs, used = {}, 0
  for line in io.lines(proof_file) do table.insert(proofs, line) end
end

request = function()
  used = used + 1
  -- Past the end of the list the request goes without a proof: a 401 that wrk counts as non-2xx.
  return wrk.format("POST", nil, {["Cookie"] = "refresh_token=" .. token, ["DPoP"] = proofs[used] or ""})
end

response = function(status, headers, body)
  local cookie = headers["Set-Cookie"]
  if cookie then
    local value = string.match(cookie, "refresh_token=([^;]*)")
    if value and #value > 0 then token = value end
  end
end
