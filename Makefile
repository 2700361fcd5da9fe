# The verbs of the project; the work lives in scripts/ and the services' code.
PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYTHON := $(PY)

.PHONY: install image keys run lint test test-js test-fast test-auth test-shared test-profile test-board test-web soak audit bench profile-refresh bench-jwt bench-verify bench-revocation bench-topologies bench-memory bench-flood bench-dpop lock clean mutate

install: $(VENV)/.installed            ## virtual environment with the locked dependencies
$(VENV)/.installed: requirements-dev.lock
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
	touch $@

run:                                   ## the whole stack on http://localhost:$${GATEWAY_PORT:-8080}
	scripts/run.sh

image:                                 ## the services' image (docker, else podman; a stand-in base where none can be pulled)
	scripts/image.sh

keys: install                          ## development signing key and JWKS under var/keys/
	$(PY) -m auth_service keys init --dir var/keys

lint: install                          ## ruff (lint and format) and mypy --strict; CI runs it before the tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install test-js                  ## every test, against real Redis, SQLite and PostgreSQL
	scripts/ensure-test-services.sh
	$(PY) -m pytest $(PYTEST_ARGS)

test-js:                               ## the token client package (clients/js): npm ci, Node's test runner, tsc; < 10 s
	@command -v npm >/dev/null || (. scripts/lib.sh && apt_install nodejs npm)
	cd clients/js && npm ci --no-audit --no-fund --loglevel=error && npm test

test-fast: install                     ## the tests that need no server or process, for the edit-test loop
	$(PY) -m pytest -m "not servers" -q $(PYTEST_ARGS)

test-auth: install                     ## one folder of tests (also test-shared, -profile, -board, -web)
	scripts/ensure-test-services.sh && $(PY) -m pytest tests/auth_service $(PYTEST_ARGS)
test-shared: install
	scripts/ensure-test-services.sh && $(PY) -m pytest tests/shared $(PYTEST_ARGS)
test-profile: install
	scripts/ensure-test-services.sh && $(PY) -m pytest tests/profile_service $(PYTEST_ARGS)
test-board: install
	scripts/ensure-test-services.sh && $(PY) -m pytest tests/board_service $(PYTEST_ARGS)
test-web: install
	scripts/ensure-test-services.sh && $(PY) -m pytest tests/web $(PYTEST_ARGS)

soak: install                          ## the load run for 60 s with 50 users (make test runs a short one)
	scripts/ensure-test-services.sh && LOAD_SECONDS=60 LOAD_USERS=50 $(PY) -m pytest tests/load -s $(PYTEST_ARGS)

audit: install                         ## known vulnerabilities in the locked dependencies (reports)
	$(VENV)/bin/pip-audit --requirement requirements.lock --no-deps --disable-pip --progress-spinner off

bench: install                         ## the HTTP hot paths under wrk, with ratios (BENCH_SECONDS, BENCH_RUNS)
	@command -v wrk >/dev/null || (. scripts/lib.sh && apt_install wrk)
	@command -v nginx >/dev/null || (. scripts/lib.sh && apt_install nginx-light)
	$(PY) bench/http_bench.py

profile-refresh: install               ## py-spy of auth's refresh under wrk load: var/profile/refresh.svg and .md (top frames)
	@command -v wrk >/dev/null || (. scripts/lib.sh && apt_install wrk)
	$(PY) bench/profile_refresh.py

bench-jwt: install                     ## sign/verify cost of the candidate JWT algorithms
	$(PY) bench/jwt_algorithms.py

bench-verify: install                  ## what token verification adds per request, cached or not
	PYTHONPATH=. $(PY) bench/verify_cost.py

bench-revocation: install              ## logout → every worker of profile and board refuses: p50/p99 (REVOCATIONS)
	@command -v nginx >/dev/null || (. scripts/lib.sh && apt_install nginx-light)
	@command -v redis-server >/dev/null || (. scripts/lib.sh && apt_install redis-server)
	PYTHONPATH=. $(PY) bench/revocation_bench.py

bench-topologies: install              ## refresh throughput: standalone vs Sentinel (WAIT 0 and 1) vs Cluster
	@command -v wrk >/dev/null || (. scripts/lib.sh && apt_install wrk)
	@command -v redis-cli >/dev/null || (. scripts/lib.sh && apt_install redis-tools)
	$(PY) bench/redis_topologies.py

bench-flood: install                   ## row 8 alone: refresh p50/p99 alone and under a login flood, admission on and off
	@command -v wrk >/dev/null || (. scripts/lib.sh && apt_install wrk)
	@command -v redis-server >/dev/null || (. scripts/lib.sh && apt_install redis-server)
	$(PY) bench/login_flood.py

bench-memory: install                  ## Redis memory per live session at 0, 10 and 336 rotations
	$(PY) bench/session_memory.py

bench-dpop: install                    ## DPoP: bound refresh vs unbound (same run), DPoP vs Bearer at profile
	$(PY) bench/dpop_bench.py

lock:                                  ## re-resolve pyproject.toml: runtime lock (images) and dev lock
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip compile -q pyproject.toml --universal --generate-hashes -o requirements.lock
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --generate-hashes -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache

mutate: install                        ## mutation testing of sessions, verifier, throttle and CSRF (by hand; minutes)
	$(VENV)/bin/python -c "import mutmut" 2>/dev/null || $(PY) -m pip install -q "mutmut[patch]==2.5.1"
	scripts/mutate.sh
