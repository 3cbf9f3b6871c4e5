# melxai: `make run` opens the app, `make test` runs the tests; both set up first.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build run test check fmt clippy bench clean-setup

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
