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

FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS      := fuzz_frame_decoder fuzz_dispatch fuzz_config fuzz_view_delta fuzz_game fuzz_record

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

# libFuzzer on the frame decoder, the session dispatch, the config loader,
# the view delta, every game module (fuzz_game once per games/*.so) and
# the match record file (fuzz/README.md); any crash, leak or timeout fails.
# Through ctest (label fuzz: fuzz/run.sh per fuzzer), so the run ends with
# ctest's summary line; each fuzzer's figures are in $(FUZZ_BUILD)/logs/.
# fuzz/run.sh alone does the same without ctest and prints the figures.
test-fuzz: test-deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSKIRMISH_FUZZ=ON -DSKIRMISH_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target make_seed_corpus $(FUZZERS)
	cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz

test: test-normal test-asan test-fuzz

# Prints figures; not a test. See bench/README.md.
bench: build
	bench/run_handoff_bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
