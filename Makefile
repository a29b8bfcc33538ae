# Cohort: `make run` trains the default config on this machine; `make test` runs the tests.
# Both install what is missing first (Debian packages, with sudo only when not root).

SWIFT      ?= swift
CONFIG     ?= configs/quickstart.yaml
APT_DEPS   := libopenblas-dev libzmq3-dev zlib1g-dev pkg-config
# What the tests start for real: an OpenSSH server for the ssh launcher, Slurm and munge for the
# Slurm launcher, iproute2 for network namespaces.
TEST_DEPS  := openssh-server openssh-client slurmctld slurmd slurm-client munge iproute2
# Tests run on release builds: numeric code is 10-50x slower in debug.
TEST_FLAGS := -c release -Xswiftc -enable-testing

.PHONY: all deps test-deps install build run test test-mnist bench clean

all: build

deps:
	@$(MAKE) --no-print-directory install PACKAGES="$(APT_DEPS)"
	@command -v $(SWIFT) >/dev/null || { echo "Swift 6 is required: https://www.swift.org/install/linux/"; exit 1; }

test-deps:
	@$(MAKE) --no-print-directory install PACKAGES="$(TEST_DEPS)"

# Installs the Debian packages of PACKAGES that are missing (through sudo when not root).
install:
	@missing=""; \
	for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -ne 0 ] && sudo=sudo; \
	  echo "installing:$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build -c release --product cohort

run: build
	.build/release/cohort train $(CONFIG)

PYTHON ?= python3

test: deps test-deps
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(SWIFT) test $(TEST_FLAGS) --skip-build
	@# Checkpoints must load in Python without PyTorch: safetensors and numpy from PyPI.
	@$(PYTHON) -c "import safetensors, numpy" 2>/dev/null || $(PYTHON) -m pip install -q --disable-pip-version-check safetensors numpy
	$(PYTHON) Tests/python/check_checkpoints.py

# The checks that read MNIST, on the MNIST that COHORT_DATA names (the full set, say):
# make test-mnist COHORT_DATA=~/.cache/cohort/mnist
MNIST_SUITES := MNISTTests|MNISTAccuracyTests|ClusterRunTests|CurveRunTests
test-mnist: deps
	@test -n "$(COHORT_DATA)" || { echo "set COHORT_DATA to an MNIST directory"; exit 2; }
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	COHORT_DATA="$(COHORT_DATA)" $(SWIFT) test $(TEST_FLAGS) --skip-build --filter '$(MNIST_SUITES)'

# JSON lines: sgemm, training steps, data pipeline, and the distributed trainer (which runs the
# cohort executable, so both are built).
bench: deps
	$(SWIFT) build -c release --product cohort
	$(SWIFT) build -c release --product cohort-bench
	.build/release/cohort-bench

clean:
	rm -rf .build runs
