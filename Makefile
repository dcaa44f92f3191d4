# The two entry points of the README: `make demo` and `make test` (both set everything up).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
DEMO := build/demo

.PHONY: setup demo test test-full clean system-packages riscv-toolchain

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
	$(BIN)/dory-verify $(DEMO)/model.onnx --golden $(DEMO) --sanitize --report $(DEMO)/report.html

# Debian packages the tests use: the RISC-V toolchain and QEMU of `dory-verify --target rv32-qemu`
# and tests/test_rv32.py, upstream mlir-opt for tests/test_mlir_opt.py, headless Chromium for
# tests/test_html_report.py (~1 min to install);
# nothing to do when they are there. As root directly, otherwise through sudo.
SYSTEM_PACKAGES := gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc mlir-19-tools chromium
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then \
	  echo "system-packages: installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "system-packages: no apt-get here: install" $$missing "or equivalents, else their tests are skipped"; \
	else \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q \
	  && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

riscv-toolchain: system-packages

# The tests CI runs, on every core (pytest-xdist; lit runs its tests in parallel by itself): the
# full network x pipeline matrix is tiered (tests marked `full` are left to test-full, README "Tests").
PYTEST := $(BIN)/python -m pytest -q -n auto --dist worksteal
test: setup system-packages
	$(PYTEST) -m "not full"
	PATH="$(BIN):$$PATH" $(BIN)/lit -sv tests/filecheck

# Everything: every network with every pipeline, all random-layer seeds, every rv32 case. Run it
# before resolving an issue that touches the lowering, the kernels or the runtime.
test-full: setup system-packages
	$(PYTEST)
	PATH="$(BIN):$$PATH" $(BIN)/lit -sv tests/filecheck

clean:
	rm -rf build $(VENV) *.egg-info
