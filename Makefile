# The two commands (README):
#   make run    install what is missing, build, start the server on configs/skirmish.toml
#   make test   install what is missing, build (normal + ASan/UBSan), run every test,
#               then the fuzzers for FUZZ_SECONDS each (clang, build-fuzz/)
BUILD      ?= build
ASAN_BUILD ?= build-asan
CONFIG     ?= configs/skirmish.toml
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja
CTEST      := ctest --output-on-failure --timeout 300 -j $(JOBS)

FUZZ_SECONDS ?= 60

.PHONY: all deps test-deps build build-asan run test test-normal test-asan test-fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DSKIRMISH_SANITIZE=ON

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	$(BUILD)/server/skirmish-server --config $(CONFIG)

test-normal: test-deps build
	cd $(BUILD) && $(CTEST)

# Sanitizer findings abort the process, so any report fails its test.
test-asan: test-deps build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(CTEST)

# libFuzzer on the frame decoder, the session dispatch and the config loader
# (fuzz/README.md); any crash, leak or timeout fails.
test-fuzz: test-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

test: test-normal test-asan test-fuzz

# Prints figures; not a test. See bench/README.md.
bench: build
	bench/run_handoff_bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
