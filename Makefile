# melxai: `make run` opens the app, `make test` runs the tests; both set up first.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build run test check fmt clippy bench bench-gpu clean-setup

# Idempotent: venv + libtorch wheel, ImageNet weights -> safetensors, MED-NODE link.
setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release

run: build
	./target/release/melxai

test: setup
	$(CARGO) test --release -- --test-threads=2

# What CI checks beyond the tests.
check: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) test --release -- --test-threads=2

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
