# carctl: `make demo` runs the simulated car, `make test` runs every test. Each bootstraps .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
comma := ,
PIP_FLAGS := --disable-pip-version-check --quiet --only-binary=:all: -c requirements/constraints.txt

# The board's own venv (make venv-board): only what `carctl run` needs, with the platform link and the service tool.
# On a board:
# make venv-board BOARD_VENV=/opt/carctl/.venv [FACE=1] [PYTHON=python3.13]
BOARD_VENV ?= .venv-board
FACE ?=
# The core, protocol and simulator tests also run on the Python of Raspberry Pi OS trixie (make test-313).
# pyenv's shim for python3.13 answers only where 3.13 is the selected version: its own path is tried too.
PYTHON313 ?= $(or $(shell for c in python3.13 $$HOME/.pyenv/versions/3.13.0/bin/python3.13; do \
	"$$c" -c '' >/dev/null 2>&1 && echo "$$c" && break; done),python3.13)
VENV313 := .venv313
# make dist: the offline bundle for the board, for these Pythons (bookworm 3.11, trixie 3.13) and this machine type.
DIST_PY ?= 3.11 3.13
DIST_ARCH ?= aarch64
# Refuses a Python the package does not support, in one sentence, before a venv is made with it.
PY_OK := import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else \
	f"{sys.executable} is Python {sys.version.split()[0]}; carctl needs Python 3.11, 3.12 or 3.13")

.PHONY: venv venv-board demo test test-313 dist fuzz bench hil clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt carctl/face/model_manifest.toml tools/install_face_models.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) setuptools==84.2.1
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-build-isolation -e '.[sim,dev,face,platform,service]'
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps face_recognition==1.3.0
	$(BIN)/python tools/install_face_models.py
	@touch $(STAMP)

# Editable, as .venv: the board runs the code of this checkout (keep it at /opt/carctl), and the face worker finds
# carctl/face/model_manifest.toml beside it. The stamp names FACE so that asking for the face feature installs it.
BOARD_STAMP := $(BOARD_VENV)/.installed-board$(if $(FACE),-face)

venv-board: $(BOARD_STAMP)

$(BOARD_STAMP): pyproject.toml requirements/constraints.txt carctl/face/model_manifest.toml tools/install_face_models.py
	@$(PYTHON) -c '$(PY_OK)'
	@test -x $(BOARD_VENV)/bin/python || $(PYTHON) -m venv $(BOARD_VENV)
	$(BOARD_VENV)/bin/python -m pip install $(PIP_FLAGS) setuptools==84.2.1
	$(BOARD_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-build-isolation \
		-e '.[platform,service$(if $(FACE),$(comma)face)]'
ifneq ($(FACE),)
	$(BOARD_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps face_recognition==1.3.0
	$(BOARD_VENV)/bin/python tools/install_face_models.py
endif
	@touch $@

demo: venv
	@mkdir -p out
	$(BIN)/carctl sim --json out/demo-report.json --plot out/demo.png

# In 3 workers: the hardware-in-the-loop tests mostly wait on the simulated shaft's real time (16 minutes of them
# one after another), so three at a time on 2 cores keep the suite near 10 minutes. TEST_WORKERS=0 runs them in turn.
TEST_WORKERS ?= 3
test: venv
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

# The core, protocol and simulator tests on Python 3.13, in a venv of its own (no face packages). CI runs it after
# `make test`, within its 20 minutes, so not the slow tests, nor the formal model (spin checks it; Python's version
# does not change it): about 2 minutes from a clean clone (docs/deployment.md).
$(VENV313)/.installed: pyproject.toml requirements/constraints.txt
	@$(PYTHON313) -c '$(PY_OK)'
	@test -x $(VENV313)/bin/python || $(PYTHON313) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install $(PIP_FLAGS) setuptools==84.2.1
	$(VENV313)/bin/python -m pip install $(PIP_FLAGS) --no-build-isolation -e '.[sim,dev,platform]'
	@touch $@

# The property tests (tests/sim/test_properties.py) run on 3.11 only: the same pure code, and 44 s of CI time.
test-313: $(VENV313)/.installed
	$(VENV313)/bin/python -m pytest -q -m "not slow and not hil" \
		--ignore tests/core/test_formal_model.py --ignore tests/sim/test_properties.py tests/core tests/protocol tests/sim

# The offline bundle for the board: out/dist/carctl-<version>-board.tar.gz (FACE=1 adds the face feature). Needs
# PyPI; the board needs no network (docs/deployment.md).
dist:
	@$(PYTHON) -c '$(PY_OK)'
	$(PYTHON) tools/build_dist.py --out out/dist $(foreach v,$(DIST_PY),--python $(v)) --arch $(DIST_ARCH) \
		$(if $(FACE),--face)

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

# Only the default board venv: one made elsewhere (BOARD_VENV=/opt/carctl/.venv) is not this checkout's to delete.
clean:
	rm -rf $(VENV) $(VENV313) .venv-board out .pytest_cache
