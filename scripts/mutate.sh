#!/usr/bin/env bash
# `make mutate`: mutation testing of the security-critical code, by hand (CPU heavy, not in CI).
# Only the named functions and Lua scripts are mutated, each module against only the tests that
# guard it, on SQLite only, stopping at the first failure, so a run stays within minutes.
# Results: `.venv/bin/mutmut results`, and `.venv/bin/mutmut show ID` for one mutant.
set -euo pipefail
cd "$(dirname "$0")/.."
MUTMUT=.venv/bin/mutmut
PYTEST=".venv/bin/python -m pytest -x -q -p no:cacheprovider"
ONLY_SQLITE="-k 'not postgresql'"
rm -f .mutmut-cache  # every run starts afresh: results are for the tests as they are now

# mutate <path> <function or constant names, comma-separated> <pytest arguments...>
# The names' lines are handed to mutmut as a patch that adds them; test files that do not exist
# (in an older checkout) are left out of the runner.
mutate() {
    local path=$1 names=$2 args=() arg patch; shift 2
    for arg in "$@"; do
        [[ $arg == tests/* && ! -e $arg ]] || args+=("$arg")
    done
    patch=$(mktemp)
    .venv/bin/python - "$path" "$names" >"$patch" <<'PY'
import ast, difflib, sys
path, names = sys.argv[1], set(sys.argv[2].split(","))
source = open(path).read().splitlines(keepends=True)
chosen = set()
for node in ast.walk(ast.parse("".join(source))):
    name = getattr(node, "name", None) or (isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None))
    if name in names:
        chosen.update(range(node.lineno - 1, node.end_lineno))
without = [line for number, line in enumerate(source) if number not in chosen]
sys.stdout.writelines(difflib.unified_diff(without, source, f"a/{path}", f"b/{path}"))
PY
    "$MUTMUT" run --paths-to-mutate "$path" --use-patch-file "$patch" --runner "$PYTEST ${args[*]}" \
        --no-progress --simple-output || true
    rm -f "$patch"
}

mutate shared/access_tokens.py _verify_signature_and_claims,verify,_unverified_header,parse,FORBIDDEN_HEADERS \
    tests/shared/test_access_tokens.py tests/shared/test_jwks_keys.py
mutate shared/revocations.py RevocationState tests/shared/test_revocations.py
mutate auth_service/throttle.py begin_attempt,succeeded,_key,_counters,_UNCOUNT \
    tests/auth_service/test_login.py tests/auth_service/test_login_ceiling.py "$ONLY_SQLITE"
mutate auth_service/devices.py recognise,issue,_mac,_ENTRY tests/auth_service/test_login_ceiling.py "$ONLY_SQLITE"
mutate auth_service/routes.py same_origin_only tests/auth_service/test_refresh.py \
    tests/auth_service/test_credentials_csrf.py "-k 'not postgresql and (csrf or origin or cross_site or same_origin)'"
# The slowest last: sessions' tests wait out grace windows and lifetimes.
mutate auth_service/sessions.py _ROTATE,_REVOKE_BY_TOKEN,_REVOKE_OWNED,rotate,_session_id_of,revoke_by_token \
    tests/auth_service/test_session_store.py tests/auth_service/test_refresh.py tests/auth_service/test_sessions.py \
    "$ONLY_SQLITE"

"$MUTMUT" results
