-- GET with a DPoP-bound access token (Authorization: DPoP) and a fresh proof per request (with `ath`),
-- signed beforehand by bench/dpop_bench.py: one file per thread, one proof a line. Without
-- DPOP_PROOFS_DIR it sends the token as Bearer, so both sides pay the same for the script.
local next_thread = 1
local proofs_dir = os.getenv("DPOP_PROOFS_DIR")

function setup(thread)
  if proofs_dir then thread:set("proof_file", proofs_dir .. "/" .. next_thread .. ".txt") end
  next_thread = next_thread + 1
end

function init(args)
  proofs, used = {}, 0
  local scheme = proof_file and "DPoP " or "Bearer "
  authorization = scheme .. os.getenv("ACCESS_TOKEN")
  if proof_file then
    for line in io.lines(proof_file) do table.insert(proofs, line) end
  end
end

request = function()
  used = used + 1
  if proof_file then
    return wrk.format("GET", nil, {["Authorization"] = authorization, ["DPoP"] = proofs[used] or ""})
  end
  return wrk.format("GET", nil, {["Authorization"] = authorization})
end
