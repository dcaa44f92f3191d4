# The two entry points of the README: `make demo` and `make test` (both set everything up).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
DEMO := build/demo

.PHONY: setup demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Generates the bundled example network (goldens from onnx's reference evaluator), prints
# its tiled qnn IR, compiles it to C for GAP8, builds and runs that on the host with the
# project's PMSIS runtime, and compares every layer bit for bit.
demo: setup
	$(BIN)/python -m dory_mlir.examples.nemo_builder $(DEMO) --name residual
	$(BIN)/dory-opt $(DEMO)/model.onnx --tile --tile-report $(DEMO)/tiles.json
	$(BIN)/dory-opt $(DEMO)/model.onnx --tile --lower-to-pulp -t pulp-c -o $(DEMO)/app
	$(BIN)/dory-verify $(DEMO)/model.onnx --golden $(DEMO) --sanitize

test: setup
	$(BIN)/python -m pytest -q
	PATH="$(BIN):$$PATH" $(BIN)/lit -v tests/filecheck

clean:
	rm -rf build $(VENV) *.egg-info
