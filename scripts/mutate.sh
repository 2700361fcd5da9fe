#!/usr/bin/env bash
# `make mutate`: mutation testing of the security-critical code, by hand (CPU heavy, not in CI).
# Each module is mutated against only the tests that guard it, on SQLite only, stopping at the
# first failure, so a run stays within minutes. Results: `.venv/bin/mutmut results`, and
# `.venv/bin/mutmut show ID` for one mutant. A fresh run: `rm .mutmut-cache`.
set -euo pipefail
cd "$(dirname "$0")/.."
MUTMUT=.venv/bin/mutmut
PYTEST=".venv/bin/python -m pytest -x -q -p no:cacheprovider"
ONLY_SQLITE="-k 'not postgresql'"

mutate() {  # mutate <path> <pytest arguments...>; test files that do not exist (yet) are left out
    local path=$1 args=() arg; shift
    for arg in "$@"; do
        [[ $arg == tests/* && ! -e $arg ]] || args+=("$arg")
    done
    "$MUTMUT" run --paths-to-mutate "$path" --runner "$PYTEST ${args[*]}" --no-progress --simple-output \
        "${EXTRA[@]}" || true
}

EXTRA=()
mutate shared/access_tokens.py tests/shared/test_access_tokens.py tests/shared/test_jwks_keys.py
mutate auth_service/throttle.py tests/auth_service/test_login.py "$ONLY_SQLITE"

# The CSRF check is one function of routes.py: mutate only its lines, given as a patch that adds them.
patch=$(mktemp)
diff -u --label a/auth_service/routes.py --label b/auth_service/routes.py \
    <(sed '/^def _reject_cross_site/,/^$/d' auth_service/routes.py) auth_service/routes.py >"$patch" || true
EXTRA=(--use-patch-file "$patch")
mutate auth_service/routes.py tests/auth_service/test_refresh.py "-k 'not postgresql and (csrf or origin)'"
rm -f "$patch"

# The slowest last: sessions' tests wait out grace windows and lifetimes.
EXTRA=()
mutate auth_service/sessions.py tests/auth_service/test_session_store.py tests/auth_service/test_refresh.py \
    tests/auth_service/test_sessions.py "$ONLY_SQLITE"

"$MUTMUT" results
