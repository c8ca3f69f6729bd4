# airlock front door. The real build is CMake (CMakeLists.txt); this file only
# strings the usual commands together. Every step is re-runnable.
#
#   make test    deps, build, unit tests, ASan+UBSan build + tests,
#                Cortex-M cross check, fuzz smoke test
#   make demo    the whole update chain: server, 20 simulated devices, two
#                campaigns, power cuts, a revert (scripts/demo.sh, docs/quickstart.md)
#   make bench   run the benchmarks in bench/ (every executable there but the soaks)
#   make soak    the long runs: fuzzing (bench/fuzz.sh, SOAK_SECONDS=600),
#                1,000,000 power-cut sequences (bench/powercut.sh, POWERCUT_RUNS)
#                and a power cut at every flash operation under QEMU (bench/qemu-powercut)
#   make clean   remove the build directories it made (keeps the mbedTLS source cache)

JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST ?= ctest
# Labels that need a build of their own (run by their own steps below).
SPECIAL_LABELS := ^(fuzz|cross)$$
# ... and what the sanitizer build does not repeat: ARM code under QEMU (the
# host side is scripts) and the demo (its parts run there as sim.device).
ASAN_SKIP_LABELS := ^(fuzz|cross|qemu|demo)$$
FUZZ_SECONDS ?= 30
SOAK_SECONDS ?= 600
POWERCUT_RUNS ?= 1000000
# The sanitizer build repeats every test; its random power-cut runs are fewer
# (every single-cut point still runs): the plain build does 10,000.
ASAN_POWERCUT_RUNS ?= 3000

export ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

# $(call configure,DIR,OPTIONS): quiet cmake configure, log shown on failure.
configure = mkdir -p $(1) && $(CMAKE) -S . -B $(1) $(2) >$(1)/configure.log 2>&1 \
    || { cat $(1)/configure.log; exit 1; }

.NOTPARALLEL:
.PHONY: all test deps build unit asan cross fuzz-smoke demo bench soak clean

all: build

# Runs each step in order and prints how long it took. The closing line counts
# the ctest cases of both builds plus the cross check and the fuzz run.
test:
	@start=$$(date +%s); \
	for step in deps build unit asan cross fuzz-smoke; do \
	    t=$$(date +%s); \
	    echo "==> make $$step"; \
	    $(MAKE) --no-print-directory $$step || { echo "==> make test: step '$$step' FAILED"; exit 1; }; \
	    echo "==> $$step done in $$(( $$(date +%s) - t )) s"; \
	done; \
	echo "==> make test: all steps passed in $$(( $$(date +%s) - start )) s"; \
	n=$$(cat build/ctest.log build-asan/ctest.log | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' \
	    | awk '{ s += $$1 } END { print s + 2 }'); \
	echo "tests: $$n passed, 0 failed"

deps:
	@scripts/deps.sh

build:
	@$(call configure,build,-DAIRLOCK_SANITIZE=OFF)
	@$(CMAKE) --build build -j$(JOBS)

unit: build
	@$(CTEST) --test-dir build --output-on-failure -j$(JOBS) -LE '$(SPECIAL_LABELS)' -O build/ctest.log

asan:
	@$(call configure,build-asan,-DAIRLOCK_SANITIZE=ON)
	@$(CMAKE) --build build-asan -j$(JOBS)
	@AIRLOCK_POWERCUT_RUNS=$(ASAN_POWERCUT_RUNS) $(CTEST) --test-dir build-asan --output-on-failure \
	    -j$(JOBS) -LE '$(ASAN_SKIP_LABELS)' -O build-asan/ctest.log

cross:
	@scripts/cross-check.sh build-cm3

fuzz-smoke:
	@if [ -x scripts/fuzz.sh ]; then \
	    scripts/fuzz.sh $(FUZZ_SECONDS); \
	else \
	    echo "fuzz: scripts/fuzz.sh not present yet (no fuzz target); skipping"; \
	fi

demo:
	@scripts/demo.sh

# Every executable in bench/ except the long soak runs (bench/fuzz.sh,
# bench/powercut.sh and bench/qemu-powercut: `make soak`).
bench:
	@found=0; \
	for b in bench/*; do \
	    [ -f "$$b" ] && [ -x "$$b" ] || continue; \
	    case "$$b" in bench/fuzz.sh|bench/powercut.sh|bench/qemu-powercut) continue;; esac; found=1; \
	    echo "==> $$b"; "$$b" || exit 1; \
	done; \
	[ "$$found" -eq 1 ] || echo "bench: no benchmarks in bench/ yet"

soak:
	@bench/fuzz.sh $(SOAK_SECONDS)
	@bench/powercut.sh $(POWERCUT_RUNS)
	@bench/qemu-powercut

# Only the directories this Makefile and its scripts (fuzz.sh, bench/) create.
clean:
	rm -rf build build-asan build-cm3 build-fuzz build-bench out/demo
