# imlimits: `make run` serves on the embedded default, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LISTEN ?= 127.0.0.1:50051
CONSOLE_LISTEN ?= 127.0.0.1:8080
PROTOS := $(wildcard protos/imlimits/v1/*.proto)
# google/rpc/status.proto (the error of a batched check) ships with googleapis-common-protos.
GOOGLEAPIS = $$($(PY) -c 'import pathlib, google.rpc.status_pb2 as s; print(pathlib.Path(s.__file__).parents[2])')

.PHONY: run test test-cluster lint proto bench soak mutate redis-server browser debian-packages clean

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

# Debian's redis-server package where the machine has none (needs root or sudo).
redis-server:
	@command -v redis-server >/dev/null || $(MAKE) --no-print-directory debian-packages PACKAGES=redis-server

# Debian's chromium, its driver and a CJK font, for the console's browser tests (needs root or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	  [ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || \
	  $(MAKE) --no-print-directory debian-packages PACKAGES="chromium chromium-driver fonts-wqy-zenhei"

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

test: $(VENV)/.installed redis-server browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check server client console tests bench tools
	$(VENV)/bin/mypy

# Regenerates gen/ from protos/; the generated files are committed and
# tests/test_generated.py checks they match the protos.
proto: $(VENV)/.installed
	rm -f gen/imlimits/v1/*_pb2*.py gen/imlimits/v1/*_pb2*.pyi
	$(PY) -m grpc_tools.protoc -Iprotos -I$(GOOGLEAPIS) --python_out=gen --grpc_python_out=gen \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy --mypy_out=gen \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=gen $(PROTOS)

clean:
	rm -rf $(VENV) imlimits-data .pytest_cache .mypy_cache .ruff_cache

# The benchmark: service against a no-op gRPC server on the same stack (see bench/).
bench: $(VENV)/.installed redis-server
	PYTHONPATH=tests $(PY) -m bench $(BENCH_ARGS)
	PYTHONPATH=tests $(PY) -m bench.onboarding $(ONBOARDING_BENCH_ARGS)
	PYTHONPATH=tests $(PY) -m bench.release $(RELEASE_BENCH_ARGS)

# The suite's Redis-backed tests against a real 3-master Redis Cluster on loopback.
test-cluster: $(VENV)/.installed redis-server
	IMLIMITS_TEST_REDIS=cluster $(PY) -m pytest -q tests/e2e tests/client tests/store/test_checks_model.py \
	  tests/store/test_release.py tests/store/test_verify_pending.py tests/store/test_import_steps.py $(PYTEST_ARGS)

# Bounded soak (about 70 s): mixed load from several processes, Redis killed and restarted midway.
soak: $(VENV)/.installed redis-server
	PYTHONPATH=tests $(PY) -m bench.soak $(SOAK_ARGS)

# Plants each bug of tools/mutations.toml alone in a scratch copy and runs the tests it names (minutes, not part of
# `make test`): prints caught / survived, fails if one survived or the list no longer applies to the code.
mutate: $(VENV)/.installed redis-server
	$(PY) tools/mutate.py $(MUTATE_ARGS)
