# imlimits: `make run` serves on the embedded default, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LISTEN ?= 127.0.0.1:50051
CONSOLE_LISTEN ?= 127.0.0.1:8080
PROTOS := $(wildcard protos/imlimits/v1/*.proto)
# google/rpc/status.proto (the error of a batched check) ships with googleapis-common-protos.
GOOGLEAPIS = $$($(PY) -c 'import pathlib, google.rpc.status_pb2 as s; print(pathlib.Path(s.__file__).parents[2])')

# The Matrix Synapse module (integrations/synapse, docs/synapse.md) runs in a homeserver's own environment:
# Synapse, the client library and the module, and nothing of the server.
SYNAPSE_VENV    := .venv-synapse
SYNAPSE_PY      := $(SYNAPSE_VENV)/bin/python
SYNAPSE_VERSION ?= 1.163.2
SYNAPSE_LISTEN  ?= 127.0.0.1:8008
SYNAPSE_APP     ?= 1400000001
SYNAPSE_ENV     := IMLIMITS_SYNAPSE_PYTHON=$(CURDIR)/$(SYNAPSE_PY) PYTHONPATH=tests:integrations/synapse/tests

.PHONY: run test test-cluster lint proto bench soak mutate redis-server browser node debian-packages clean \
	test-synapse bench-synapse run-synapse

# Two stamps: .runtime (the service and the command line: what `make run` needs) and
# .installed (plus the dev tools: pytest, hypothesis, ruff, mypy, grpcio-tools).
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV) || { $(MAKE) --no-print-directory debian-packages PACKAGES=python3-venv && \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(SYNAPSE_VENV)/.installed: integrations/synapse/pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(SYNAPSE_VENV) || { $(MAKE) --no-print-directory debian-packages PACKAGES=python3-venv && \
	  $(PYTHON) -m venv $(SYNAPSE_VENV); }
	$(SYNAPSE_PY) -m pip install --quiet --upgrade pip
	$(SYNAPSE_PY) -m pip install --quiet "matrix-synapse==$(SYNAPSE_VERSION)" -e ./client -e ./integrations/synapse
	touch $@

# Debian's redis-server package where the machine has none (needs root or sudo).
redis-server:
	@command -v redis-server >/dev/null || $(MAKE) --no-print-directory debian-packages PACKAGES=redis-server

# Debian's chromium, its driver and a CJK font, for the console's browser tests (needs root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	  [ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || \
	  $(MAKE) --no-print-directory debian-packages PACKAGES="chromium chromium-driver fonts-wqy-zenhei"

# Debian's Node.js and npm where the machine has none, for examples/node (run by tests/examples).
node:
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  $(MAKE) --no-print-directory debian-packages PACKAGES="nodejs npm"

# The Node example's packages from npm, exactly as its package-lock.json pins them (node_modules is not committed).
NODE_EXAMPLE := examples/node/node_modules/.package-lock.json
$(NODE_EXAMPLE): examples/node/package-lock.json | node
	npm ci --prefix examples/node --no-audit --no-fund --loglevel=error

debian-packages:
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PACKAGES) >/dev/null

# The server and, beside it, the web console; Ctrl-C stops both.
run: $(VENV)/.runtime redis-server
	@echo "imlimits: gRPC server on $(LISTEN); web console: open http://$(CONSOLE_LISTEN)/"
	@echo "The command line, from another shell in $(CURDIR):"
	@echo '  export PATH="$$PWD/.venv/bin:$$PATH"; imlimits --help'
	@$(VENV)/bin/imlimits-server --listen $(LISTEN) & server=$$!; \
	  trap 'kill $$server 2>/dev/null; wait $$server' EXIT INT TERM; \
	  $(VENV)/bin/imlimits-console --listen $(CONSOLE_LISTEN) --target $(LISTEN)

test: $(VENV)/.installed redis-server browser $(NODE_EXAMPLE)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The second mypy run checks the Synapse module against the installed Synapse's own types (it ships py.typed).
lint: $(VENV)/.installed $(SYNAPSE_VENV)/.installed
	$(VENV)/bin/ruff check server client console tests bench tools integrations
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --python-executable $(SYNAPSE_PY) --config-file integrations/synapse/pyproject.toml

# The Synapse module against real homeservers (SQLite, loopback, no federation) in front of real imlimits servers.
test-synapse: $(VENV)/.installed $(SYNAPSE_VENV)/.installed redis-server
	$(SYNAPSE_ENV):integrations/synapse $(PY) -m pytest -q integrations/synapse/tests $(PYTEST_ARGS)

# What the module adds to a Matrix join and a createRoom: p50 and p99, with and without it, in one run.
bench-synapse: $(VENV)/.installed $(SYNAPSE_VENV)/.installed redis-server
	$(SYNAPSE_ENV) $(PY) -m bench.synapse $(SYNAPSE_BENCH_ARGS)

# A homeserver with the module on http://$(SYNAPSE_LISTEN)/, in front of `make run`'s server (start that first);
# docs/synapse.md walks a newcomer through a room filling up. Ctrl-C stops it; `rm -r synapse-data` forgets it.
run-synapse: $(VENV)/.installed $(SYNAPSE_VENV)/.installed
	$(SYNAPSE_ENV) $(PY) -m homeserver \
	  --data-dir synapse-data --listen $(SYNAPSE_LISTEN) --target $(LISTEN) --app-id $(SYNAPSE_APP)

# Regenerates gen/ from protos/; the generated files are committed and
# tests/test_generated.py checks they match the protos.
proto: $(VENV)/.installed
	rm -f gen/imlimits/v1/*_pb2*.py gen/imlimits/v1/*_pb2*.pyi
	$(PY) -m grpc_tools.protoc -Iprotos -I$(GOOGLEAPIS) --python_out=gen --grpc_python_out=gen \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy --mypy_out=gen \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=gen $(PROTOS)

clean:
	rm -rf $(VENV) $(SYNAPSE_VENV) imlimits-data synapse-data .pytest_cache .mypy_cache .ruff_cache

# The benchmark: service against a no-op gRPC server on the same stack (see bench/).
bench: $(VENV)/.installed redis-server
	PYTHONPATH=tests $(PY) -m bench $(BENCH_ARGS)
	PYTHONPATH=tests $(PY) -m bench.onboarding $(ONBOARDING_BENCH_ARGS)
	PYTHONPATH=tests $(PY) -m bench.release $(RELEASE_BENCH_ARGS)
	PYTHONPATH=tests $(PY) -m bench.holds $(HOLDS_BENCH_ARGS)
	$(PY) -m bench.capacity $(CAPACITY_ARGS)

# The suite's Redis-backed tests against a real 3-master Redis Cluster on loopback.
test-cluster: $(VENV)/.installed redis-server
	IMLIMITS_TEST_REDIS=cluster $(PY) -m pytest -q tests/e2e tests/client tests/store/test_checks_model.py \
	  tests/store/test_release.py tests/store/test_holds_store.py tests/store/test_verify_pending.py \
	  tests/store/test_import_steps.py $(PYTEST_ARGS)

# Bounded soak (about 70 s): mixed load from several processes, Redis killed and restarted midway.
soak: $(VENV)/.installed redis-server
	PYTHONPATH=tests $(PY) -m bench.soak $(SOAK_ARGS)

# Plants each bug of tools/mutations.toml alone in a scratch copy and runs the tests it names (minutes, not part of
# `make test`): prints caught / survived, fails if one survived or the list no longer applies to the code.
mutate: $(VENV)/.installed redis-server
	$(PY) tools/mutate.py $(MUTATE_ARGS)
