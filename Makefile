# Kelpie — the two commands a newcomer needs: `make demo` and `make test`.
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

.PHONY: deps build test unit integration demo format clean asan bench fuzz soak

deps:
	scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Unit and integration tests (ctest). CI also runs the unit tests under ASan/UBSan.
test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 1200 $(CTEST_ARGS)
ifeq ($(CI),true)
	$(MAKE) asan
	$(MAKE) fuzz FUZZ_SECONDS=$(CI_FUZZ_SECONDS)
endif

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

asan: deps
	cmake -S . -B $(BUILD)-asan -G Ninja -DKELPIE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure --timeout 1200 -L unit
	# The client library's asynchronous connection against real (sanitized) sheep.
	cd $(BUILD)-asan && ctest --output-on-failure -R '^integration\.client_vdi_io_shared$$'

# libFuzzer targets (tests/fuzz) in their own clang-14 tree with ASan/UBSan, each run for
# FUZZ_SECONDS from its seed corpus; CI runs them for CI_FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
CI_FUZZ_SECONDS ?= 10
fuzz: deps
	cmake -S . -B $(BUILD)-fuzz -G Ninja -DKELPIE_FUZZ=ON -DKELPIE_WERROR=OFF \
	  -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Fuzz $(CMAKE_FLAGS)
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_all
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run_fuzz.sh $(BUILD)-fuzz

demo: build
	scripts/demo.sh

# qemu-img bench over iSCSI: kelpie-iscsi and tgtd (sheepdog store) on a 3-copy cluster beside
# tgtd on a local file (the ceiling). BENCH_QUICK=1 for a short smoke run.
bench: build
	KELPIE_BIN=$(abspath $(BUILD))/bin python3 bench/run_bench.py

# Fault tests at length: 50 sheep kill -9 cycles under a verified write load, kelpie-iscsi killed
# under qemu-io as many times, a ZooKeeper session expiring mid-load; then a summary table
# (acknowledged writes, lost writes: must be 0). SOAK_CYCLES=N for another count.
SOAK_CYCLES ?= 50
soak: build
	rm -f $(BUILD)/soak-report.jsonl
	cd $(BUILD) && KELPIE_SOAK=1 KELPIE_FAULT_CYCLES=$(SOAK_CYCLES) \
	  KELPIE_FAULT_REPORT=$(abspath $(BUILD))/soak-report.jsonl \
	  ctest --output-on-failure --timeout 7200 -L fault; status=$$?; \
	  python3 $(CURDIR)/tests/fault/soak_table.py soak-report.jsonl && exit $$status

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
