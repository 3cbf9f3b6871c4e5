# melxai: `make run` opens the app, `make test` runs the tests; both set up first.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build run test test-full check fmt clippy bench bench-gpu clean-setup

# Idempotent: venv + libtorch wheel, ImageNet weights -> safetensors, MED-NODE link.
setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

run: build
	./target/release/melxai

# Real-terminal and Slurm tests whose tools are missing skip, and the run
# ends with their count (tests/real_terminals.rs and tests/slurm.rs list
# them in target/tmp).
SKIPPED_LIST := target/tmp/real-terminals-skipped.txt
test: setup
	@rm -f $(SKIPPED_LIST)
	$(CARGO) test --release -- --test-threads=2
	@if [ -s $(SKIPPED_LIST) ]; then \
	  echo; echo "$$(wc -l < $(SKIPPED_LIST)) real-terminal/Slurm tests SKIPPED (tools not installed; \`make test-full\` installs them):"; \
	  sed 's/^/  /' $(SKIPPED_LIST); fi

# Installs the terminal tools (apt) and requires them: what .ci/run runs.
test-full:
	bash scripts/install_terminal_tools.sh
	bash scripts/install_slurm.sh
	MELXAI_REQUIRE_REAL_TERMINALS=1 MELXAI_REQUIRE_SLURM=1 $(MAKE) test

# What CI checks beyond the tests.
check: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(MAKE) test

fmt:
	$(CARGO) fmt --all

clippy: setup
	$(CARGO) clippy --release --all-targets -- -D warnings

bench: setup
	$(CARGO) bench

# melxai vs its PyTorch peer on this machine's CUDA GPU, one results file
# (benches/README.md, GPU); says so and exits 0 without a GPU.
bench-gpu: setup
	$(CARGO) build --release
	$(CARGO) bench --no-run --bench explain --bench train
	bash benches/gpu.sh
