# The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv clean

# Install torch first, pinned, so no dependency can pull another (CUDA) build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# The Reachy Mini MuJoCo model ships inside this wheel; its runtime deps need system GStreamer.
	$(BIN)/pip install --quiet --no-deps reachy-mini==1.12.0
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/flywheel demo

lint: venv
	$(BIN)/ruff check flywheel tests benchmarks scripts

# LeRobot's own code gets a venv of its own for the interop test (see scripts/lerobot-venv.sh).
# PostgreSQL is started for the storage tests and stopped afterwards, pass or fail.
test: venv lint
	@bash scripts/lerobot-venv.sh
	@bash scripts/postgres.sh start
	@set -a; source .pg.env; set +a; \
	  $(BIN)/pytest; status=$$?; \
	  bash scripts/postgres.sh stop; exit $$status

clean:
	bash scripts/postgres.sh stop || true
	rm -rf $(VENV) .venv-lerobot .pgdata .pg.env .flywheel .flywheel-demo
