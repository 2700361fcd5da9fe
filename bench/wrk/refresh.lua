-- POST /api/auth/refresh with a rotating cookie. Run with one connection per thread
-- (-t N -c N): each thread is one client with its own session, as a browser tab would be.
-- With DPOP_PROOFS_DIR the sessions are DPoP-bound and every request carries a proof of its own (a
-- new jti): a Lua script cannot sign ES256, so bench/dpop_bench.py signs them beforehand, one file
-- per thread, one proof a line.
local tokens = {}
local next_thread = 1
local proofs_dir = os.getenv("DPOP_PROOFS_DIR")

function setup(thread)
  thread:set("token", tokens[next_thread])
  if proofs_dir then thread:set("proof_file", proofs_dir .. "/" .. next_thread .. ".txt") end
  next_thread = next_thread + 1
end

-- setup() runs in the main Lua state before the threads; load the tokens there from the env.
for token in string.gmatch(os.getenv("REFRESH_TOKENS") or "", "[^,]+") do table.insert(tokens, token) end

function init(args)
  proofs, used = {}, 0
  if proof_file then
    for line in io.lines(proof_file) do table.insert(proofs, line) end
  end
end

request = function()
  local headers = {["Cookie"] = "refresh_token=" .. token}
  if proof_file then
    used = used + 1
    -- Past the end of the list the request goes without a proof: a 401 that wrk counts as non-2xx.
    headers["DPoP"] = proofs[used] or ""
  end
  return wrk.format("POST", nil, headers)
end

response = function(status, headers, body)
  local cookie = headers["Set-Cookie"]
  if cookie then
    local value = string.match(cookie, "refresh_token=([^;]*)")
    if value and #value > 0 then token = value end
  end
end
