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

# Generates the bundled example network, prints its fused qnn IR and checks every
# layer of the golden model against goldens computed by onnx's reference evaluator.
demo: setup
	$(BIN)/python -m dory_mlir.examples.nemo_builder $(DEMO) --name residual
	$(BIN)/dory-opt $(DEMO)/model.onnx --fuse
	$(BIN)/dory-golden $(DEMO)/model.onnx --check $(DEMO)

test: setup
	$(BIN)/python -m pytest -q
	PATH="$(BIN):$$PATH" $(BIN)/lit -v tests/filecheck

clean:
	rm -rf build $(VENV) *.egg-info
