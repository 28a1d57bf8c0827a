# lxd-integrator — build, pack, test, demo.
#
#   make demo     the main job: pack the charm and run it against a real LXD cluster
#   make test     the test suite (what CI runs, via .ci/run)
#   make charm    build/lxd-integrator_amd64.charm, without charmcraft
#   make analyse  lint the packed charm with charmcraft's own analyser
#   make lib-test type-check and test the requirers' charm library (lib/charms/lxd_integrator)
#   make soak     generated histories against the packed charm and a real LXD cluster (long; not in CI)
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
ARCH := $(shell uname -m)
MUSL_TARGET ?= $(ARCH)-unknown-linux-musl
# The C compiler cc-rs uses for the musl target (the `ring` crate builds C/asm).
MUSL_CC_VAR := CC_$(subst -,_,$(MUSL_TARGET))
BINARY := target/$(MUSL_TARGET)/release/lxd-integrator
JUJU_ARCH := $(if $(filter aarch64,$(ARCH)),arm64,amd64)
CHARM := build/lxd-integrator_$(JUJU_ARCH).charm
# Throwaway virtualenv holding charmcraft from PyPI (analyse/validation only).
CHARMCRAFT_VENV ?= /tmp/ccvenv
CHARMCRAFT := $(CHARMCRAFT_VENV)/bin/charmcraft
# Throwaway virtualenvs for the charm library's checks: ops 3 with mypy, and ops 2 (the library
# supports both). `cryptography` makes the TLS tests' certificates and `hypothesis` generates
# provider payloads for the property tests; the library needs neither.
LIB_VENV ?= /tmp/libvenv
LIB_VENV_OPS2 ?= /tmp/libvenv-ops2
LIB := lib/charms/lxd_integrator/v0/lxd.py

.PHONY: help setup build charm analyse charmcraft-check lib-test lint test demo bench soak clean

help:
	@echo "targets: setup build charm analyse charmcraft-check lib-test lint test demo bench soak clean"

setup:
	scripts/setup

# Static release binary (musl, LTO, stripped; profile in Cargo.toml).
build:
	$(MUSL_CC_VAR)=musl-gcc $(CARGO) build --locked --release --target $(MUSL_TARGET) --bin lxd-integrator
	@file $(BINARY)
	@echo "size: $$(stat -c %s $(BINARY)) bytes"

# Unpacked charm in build/charm/ and the zipped .charm next to it.
charm: build
	$(CARGO) run --locked --quiet --package xtask -- pack --binary $(BINARY) --build-dir build

$(CHARMCRAFT):
	python3 -m venv $(CHARMCRAFT_VENV)
	$(CHARMCRAFT_VENV)/bin/pip install --quiet --upgrade pip
	$(CHARMCRAFT_VENV)/bin/pip install --quiet charmcraft

# charmcraft analyse exits 0 clean, 1 fatal, 2 error, 3 warnings only. The only
# expected warning is naming-conventions for the legacy lxd_* config options,
# kept for compatibility with the original charm; so 0 and 3 pass.
analyse: charm $(CHARMCRAFT)
	cd build && rc=0; $(abspath $(CHARMCRAFT)) analyse $(notdir $(CHARM)) || rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 3 ]; then echo "charmcraft analyse failed (rc=$$rc)"; exit $$rc; fi

# Load and validate charmcraft.yaml with charmcraft's own models and build planner.
charmcraft-check: $(CHARMCRAFT)
	$(CHARMCRAFT) expand-extensions >/dev/null
	$(CHARMCRAFT_VENV)/bin/python scripts/charmcraft-plan charmcraft.yaml

# A stamp per venv naming what is installed: changing the list rebuilds the venv.
LIB_PKGS := mypy pytest cryptography hypothesis
$(LIB_VENV)/.lib-test-1:
	rm -rf $(LIB_VENV) && python3 -m venv $(LIB_VENV)
	$(LIB_VENV)/bin/pip install --quiet --upgrade pip
	$(LIB_VENV)/bin/pip install --quiet 'ops[testing]>=3,<4' $(LIB_PKGS)
	touch $@

$(LIB_VENV_OPS2)/.lib-test-1:
	rm -rf $(LIB_VENV_OPS2) && python3 -m venv $(LIB_VENV_OPS2)
	$(LIB_VENV_OPS2)/bin/pip install --quiet --upgrade pip
	$(LIB_VENV_OPS2)/bin/pip install --quiet 'ops[testing]>=2.17,<3' $(LIB_PKGS)
	touch $@

# The library and its tests strictly type-checked against ops 3 and against ops 2, then the
# tests under both: ops' state-transition testing for every event, property tests over
# generated provider payloads (hypothesis), real local TLS servers for the SSL context.
LIB_MYPY = MYPYPATH=lib:tests/charmlib $(1)/bin/mypy --strict --explicit-package-bases --cache-dir=/dev/null
lib-test: $(LIB_VENV)/.lib-test-1 $(LIB_VENV_OPS2)/.lib-test-1
	$(call LIB_MYPY,$(LIB_VENV)) $(LIB) tests/charmlib
	$(call LIB_MYPY,$(LIB_VENV_OPS2)) $(LIB) tests/charmlib
	cd tests/charmlib && $(abspath $(LIB_VENV))/bin/python -m pytest -q -p no:cacheprovider --durations=8
	cd tests/charmlib && $(abspath $(LIB_VENV_OPS2))/bin/python -m pytest -q -p no:cacheprovider --durations=8

# Unit, simulator, fixture and end-to-end tests (the packed static charm included), the charm
# library's tests, then charmcraft's linter on that artifact, then a short fuzzing pass over
# every parser.
test: setup charm lint
	$(CARGO) build --workspace --bins
	LXD_INTEGRATOR_CHARM=$(abspath $(CHARM)) $(CARGO) test --workspace
	$(MAKE) --no-print-directory lib-test analyse charmcraft-check
	scripts/fuzz 10

# Formatting and lints are part of the tests: rustfmt.toml's style, clippy with no warning.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# The main job. The demo program lives in testbed/ (maintained with the tests).
# The demo drives the charm through the simulator's own binary, so both are built here: on a
# fresh clone nothing else has built jujusim yet.
demo: setup charm
	$(CARGO) build --locked --release -p jujusim --bin jujusim -p testbed --bin demo
	JUJUSIM_BIN=$(abspath target/release/jujusim) target/release/demo $(CHARM)

# Benchmarks (bench/, docs/benchmarks.md): hook wall time, peak RSS, hook-tool calls and LXD
# requests per hook against a real 3-member LXD cluster, compared with the raw-request limit,
# in worlds of 1 to 1,000 requirer units. Full run ~7 min on 2 cores (a third of it LXD adding
# the 1,000-unit world's certificates), rewrites the generated part of docs/benchmarks.md and
# the plots docs/bench-units.svg and docs/bench-certs.svg; BENCH_ARGS=--quick: ~1 min, prints
# only; BENCH_ARGS=--with-1000 adds N=1,000 certificates in one hook (~25 min more: LXD 5.0's
# adds slow down as its trust store grows).
BENCH_ARGS ?=
bench: setup build
	$(CARGO) build --locked --release --package jujusim --bin jujusim
	JUJUSIM_BIN=$(abspath target/release/jujusim) $(CARGO) run --locked --release --package bench -- \
	  --binary $(BINARY) $(if $(filter --quick,$(BENCH_ARGS)),,--doc docs/benchmarks.md) $(BENCH_ARGS)

# The soak (tests/soak/): the model test's generated histories against the packed charm, hook
# by hook through jujusim, against a real 3-member LXD cluster whose members it kills and
# restarts; every hook checked as it ends, a quiet period and a convergence check after every
# history. Prints steps, hooks, faults injected, invariant violations (must be 0) and the seed.
# SOAK_STEPS (default 2000) sets the length, SOAK_SEED replays a run (with the same revision's
# generator); 2,000 steps took 6.5 min on the reference machine, member restarts included.
# SOAK_SEED=regressions replays instead the named histories (tests/model/history.rs
# `regressions`, which the model test replays too), in 0.2 min: what SOAK_SEED=1796611989967254184
# found in its 25th history with the generator of 65310f2 (a requirer's certificate becoming the
# charm's credential, restricted: every unit must be blocked, as the charm is), one certificate
# asked for by three applications, and adopt after a refresh from the old charms.
SOAK_STEPS ?= 2000
SOAK_SEED ?=
soak: setup charm
	$(CARGO) build --locked --package jujusim --bin jujusim
	JUJUSIM_BIN=$(abspath target/debug/jujusim) LXD_INTEGRATOR_CHARM=$(abspath $(CHARM)) SOAK_STEPS=$(SOAK_STEPS) SOAK_SEED=$(SOAK_SEED) \
	  $(CARGO) test --locked --test soak

clean:
	rm -rf build
