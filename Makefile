# The two entry points of the README: `make demo` and `make test` (both set everything up).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
DEMO := build/demo

.PHONY: setup demo test clean riscv-toolchain

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

# The RISC-V toolchain of `dory-verify --target rv32-qemu` and tests/test_rv32.py (Debian packages,
# ~35 s to install); nothing to do when it is there. As root directly, otherwise through sudo.
RISCV_PACKAGES := gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
riscv-toolchain:
	@if command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 && command -v qemu-system-riscv32 >/dev/null 2>&1 \
	    && [ -f "$$(riscv64-unknown-elf-gcc -print-file-name=picolibc.specs)" ]; then \
	  echo "riscv-toolchain: installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "riscv-toolchain: no apt-get here: install $(RISCV_PACKAGES) or equivalents, else the rv32 tests are skipped"; \
	else \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q \
	  && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(RISCV_PACKAGES); \
	fi

test: setup riscv-toolchain
	$(BIN)/python -m pytest -q
	PATH="$(BIN):$$PATH" $(BIN)/lit -v tests/filecheck

clean:
	rm -rf build $(VENV) *.egg-info
