# Two entry points do all set-up on a fresh machine (only Python 3.11+ and pip needed):
#   make demo   - bootstrap, migrate, seed, and run the local stack in the foreground
#   make test   - bootstrap, then ruff, mypy and pytest (PostgreSQL, then SQLite)
# Both are idempotent: the virtualenv is rebuilt only when the lock file changes.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# PostgreSQL runs on every machine (trust auth); tests use it unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest lock clean bootstrap browser bench soak soak-loop stateful loadtest flip package-orders fuzz rollout-load

NODE_STAMP = node_modules/.installed

bootstrap: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@# the wheel holds the toolkit only; the sample shop (monolith/, extracted/) runs from
	@# this tree, which goes on the virtualenv's path
	$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'strangler-sample.pth').write_text('$(CURDIR)\n')"
	@touch $@

# The npm-side stand-ins (dynalite for DynamoDB). Without npm the stack still runs:
# moto then serves DynamoDB too, several times slower (loadtests/bench_dynamodb.py).
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: DynamoDB will be served by moto (slower); install Node.js 18+"; fi

# The dashboard's browser tests drive Debian's Chromium through its driver (selenium comes
# with the lock file): installed here when missing and this is root with apt-get; anywhere
# else those tests are skipped, saying what to install.
browser:
	@{ command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } && \
	  command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "browser tests will be skipped: install chromium and chromium-driver (apt-get)"

demo: bootstrap
	$(BIN)/strangler up

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy facade monolith extracted tests loadtests

pytest: bootstrap browser
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)
	DATABASE_URL=sqlite:// $(BIN)/python -m pytest tests/monolith tests/sync_edges -m "not postgresql" $(PYTEST_ARGS)

test: lint typecheck pytest

# The benchmark suite, each against a reference measured in the same run, JSON under
# results/bench/: (a) facade vs nginx vs direct (nginx and wrk come from Debian's packages,
# installed here when missing and this is root), (b) a routing decision against table
# size, (c) the data sync's throughput and lag, and the stand-ins it runs on (DynamoDB,
# SQS), (d) rendering every AWS output of a 100-route table, (e) the rollout's canary analysis
# against Flagger's and Argo Rollouts' rules on simulated canaries (false rollbacks, time to detect).
bench: bootstrap
	@command -v wrk >/dev/null && test -x /usr/sbin/nginx || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null && apt-get update -qq && \
	  apt-get install -y -qq nginx-light wrk >/dev/null; } || \
	  echo "bench: the facade benchmark needs nginx and wrk (apt-get install nginx-light wrk)"
	@mkdir -p results/bench
	-$(BIN)/python loadtests/bench_facade.py --json results/bench/facade.json
	$(BIN)/python loadtests/bench_routing.py --json results/bench/routing.json
	$(BIN)/python loadtests/bench_sync.py --json results/bench/sync.json
	$(BIN)/python loadtests/bench_sqs.py --json results/bench/sqs.json
	$(BIN)/python loadtests/bench_dynamodb.py --dynalite . --json results/bench/dynamodb.json
	$(BIN)/python loadtests/bench_render.py --json results/bench/render.json
	$(BIN)/python loadtests/bench_rollout.py --json results/bench/rollout.json

# The shop's traffic against the running `make demo` stack: headless, bounded, results
# (locust's CSV and HTML report, requests per backend) under results/<timestamp>/.
LOADTEST_ARGS ?= --users 20 --spawn-rate 5 --run-time 60s
loadtest: bootstrap
	$(BIN)/python loadtests/loadtest.py $(LOADTEST_ARGS)

# Flip the orders route 0 -> 10 -> 50 -> 100 -> 0 % under load on the running demo stack;
# fails if a request fails or a phase's share is off its weight (loadtests/flip.py).
FLIP_ARGS ?= --flip-seconds 20 --flip-users 20
# A rollout of the orders route under locust through the whole stack: a healthy Lambda is
# promoted, a faulty one rolled back by itself (loadtests/rollout_load.py; ~5 min).
ROLLOUT_LOAD_ARGS ?=
rollout-load: bootstrap
	$(BIN)/python loadtests/rollout_load.py $(ROLLOUT_LOAD_ARGS)

flip: bootstrap
	$(BIN)/locust -f loadtests/flip.py --headless --host http://127.0.0.1:8000 \
	  --flip-routing routing.yaml --flip-route orders --flip-to orders --flip-path /api/orders/ \
	  --flip-header "Authorization: Token $$($(BIN)/python -m monolith.manage issue_token customer1@example.com)" \
	  --csv results/flip --only-summary $(FLIP_ARGS)

# The facade's conformance fuzzer for longer than make test runs it (25 examples per
# property there): generated pipelines and backend answers, and arbitrary bytes.
FUZZ_EXAMPLES ?= 5000
fuzz: bootstrap
	STRANGLER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/facade/test_conformance.py \
	  -k "generated or arbitrary" -p no:cacheprovider --timeout 3600 -q

# The two-way soak (60 s of writes on both sides of the orders split) on SQLite, make
# demo's default, then PostgreSQL; SOAK_RUNS times each, stopping at the first failure.
SOAK_RUNS ?= 1
SOAK_ARGS ?=
soak: bootstrap
	@for i in $$(seq $(SOAK_RUNS)); do for db in sqlite postgresql; do \
	  echo "== soak $$i/$(SOAK_RUNS) on $$db"; \
	  $(BIN)/python loadtests/soak_two_way.py --database $$db --seed $$i $(SOAK_ARGS) || exit 1; \
	done; done

# Ten soaks on each database: flakiness shows here, not in one run.
soak-loop:
	$(MAKE) soak SOAK_RUNS=10

# The state machine over both real order stores, with many more examples than make test.
STATEFUL_EXAMPLES ?= 1000
stateful: bootstrap
	STRANGLER_STATEFUL_EXAMPLES=$(STATEFUL_EXAMPLES) DATABASE_URL=sqlite:// \
	  $(BIN)/python -m pytest tests/monolith/test_sync_two_sides.py -p no:cacheprovider
	STRANGLER_STATEFUL_EXAMPLES=$(STATEFUL_EXAMPLES) DATABASE_URL=$(TEST_DATABASE_URL) \
	  $(BIN)/python -m pytest tests/monolith/test_sync_two_sides.py -p no:cacheprovider

# Re-pin every dependency (hashes included) after editing pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock
	for f in extracted/catalog/requirements extracted/orders/requirements extracted/orders/requirements-sdk; do \
	  $(BIN)/uv pip compile $$f.in -c requirements.lock --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --no-header -o $$f.lock || exit 1; done

# The orders Lambda as a deployable zip (dist/orders-lambda.zip), size reported.
package-orders: $(STAMP)
	$(BIN)/python -m extracted.orders.package --out dist/orders-lambda.zip $(PACKAGE_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var dist build node_modules
