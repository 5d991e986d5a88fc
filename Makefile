# carctl: `make demo` runs the simulated car, `make test` runs every test. Each bootstraps .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS := --disable-pip-version-check --quiet --only-binary=:all: -c requirements/constraints.txt

.PHONY: venv demo test fuzz bench hil clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt models/manifest.toml tools/install_face_models.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) setuptools==84.2.1
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-build-isolation -e '.[sim,dev,face,platform]'
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps face_recognition==1.3.0
	$(BIN)/python tools/install_face_models.py
	@touch $(STAMP)

demo: venv
	@mkdir -p out
	$(BIN)/carctl sim --json out/demo-report.json --plot out/demo.png

test: venv
	$(BIN)/python -m pytest -q

# The fuzz tests (marker fuzz) with the "fuzz" hypothesis profile (conftest.py): many more examples than in
# `make test`, so no per-test timeout.
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m fuzz --timeout=0

bench: venv
	$(BIN)/python -m bench.lockstep_speed
	$(BIN)/python -m bench.loop_lag
	$(BIN)/python -m bench.wire
	$(BIN)/python -m bench.sidechannels
	$(BIN)/python -m bench.face
	$(BIN)/python -m bench.platform

# make hil HIL_ARGS="--drive rtu:/dev/ttyUSB0 --panel /dev/ttyAMA0 --bench-control HOST:PORT" for a test bench.
hil: venv
	$(BIN)/python -m pytest -q -m hil hil_tests $(HIL_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache
