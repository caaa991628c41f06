# Thin front door over CMake. The README's two commands are `make run` and `make test`;
# both install what is missing (deploy/install-deps.sh), configure and build first.
#
#   make run                 build and start the collector with its default configuration
#   make test                build and run every test (ctest)
#   make test SANITIZE=address WERROR=1 BUILD=build-asan   (what CI does)
#   make bench               build and run the benchmarks
#   make install PREFIX=DIR  build, then install the library, header, pkg-config and CMake files,
#                            the collector, its configuration and systemd unit under DIR
#   make deb                 build the Debian packages (CPack) into $(BUILD)

BUILD    ?= build
SANITIZE ?=
WERROR   ?= 0
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
PREFIX   ?= /usr/local

ifeq ($(WERROR),1)
  CMAKE_ARGS += -DTT_WERROR=ON
endif
ifneq ($(SANITIZE),)
  CMAKE_ARGS += -DTT_SANITIZE=$(SANITIZE)
endif

.PHONY: all deps configure build run test bench install deb fuzz fuzz-run format format-check clean

all: build

deps:
	@bash deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

run: build
	./$(BUILD)/collector/tailtrace-collector $(ARGS)

test: build
	@if [ -x tests/js/install.sh ]; then tests/js/install.sh; fi
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_ARGS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

deb: build
	cd $(BUILD) && cpack -G DEB

bench: build
	@for b in $(BUILD)/bench/bench_*; do [ -x "$$b" ] && "$$b"; done

# make demo: build, then run the collector and the example services with a few seconds of
# traffic and print what was kept and dropped (examples/README.md).
.PHONY: demo
demo: build
	examples/demo.sh $(BUILD)

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DTT_FUZZ=ON -DTT_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j $(JOBS) -- --no-print-directory

# Every fuzz target for FUZZ_SECONDS each from its seed corpus (CI runs this).
FUZZ_SECONDS ?= 20
fuzz-run: fuzz
	tests/fuzz/run_fuzzers.sh build-fuzz $(FUZZ_SECONDS)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build build-*
