# DecoderSpec — the two set-up commands are `make demo` and `make test`; both install what is missing.
SWIFT      ?= swift
# Native code generation for benchmarks: without a target-CPU flag, FMA becomes a libm call.
NATIVE      = -Xswiftc -target-cpu -Xswiftc native -Xswiftc -DDECODERSPEC_NATIVE
RELEASE_DIR = .build-release

.PHONY: deps demo test notebooks bench docs clean

deps:
	@./scripts/ensure-deps

## demo: build and run the main job — a walk through the whole decoder on a tiny model
demo: deps
	$(SWIFT) build --product decoder-spec
	$$($(SWIFT) build --show-bin-path)/decoder-spec demo

## test: the whole executable spec (Swift Testing suites + every notebook), with the real data
## (scripts/fetch-data) and the Python cross-checks (scripts/spec-venv: .venv-spec/bin first on PATH,
## so the specs' `/usr/bin/env python3` is the venv's). Fails when any spec is skipped; ALLOW_SKIPS=1,
## for a machine without network only, lets them skip (listed) and goes on without data or venv.
ALLOW_SKIPS ?=
OR_SKIP = $(if $(ALLOW_SKIPS),|| echo "make test: ALLOW_SKIPS=$(ALLOW_SKIPS) — going on; the specs that need it will skip" >&2,)
test: deps
	./scripts/fetch-data $(OR_SKIP)
	./scripts/spec-venv $(OR_SKIP)
	$(SWIFT) build --build-tests
	PATH="$(CURDIR)/.venv-spec/bin:$$PATH" SWIFT="$(SWIFT)" ALLOW_SKIPS="$(ALLOW_SKIPS)" ./scripts/run-specs --skip-build

## notebooks: run the notebooks alone (UPDATE=1 rewrites their output blocks)
notebooks: deps
	$(SWIFT) build --product decoder-spec
	$$($(SWIFT) build --show-bin-path)/decoder-spec notebooks $(if $(UPDATE),--update,)

## cli: the release CLI with native code generation at .build-release/release/decoder-spec — the
## binary for every long job (finetune ner, train translate, train lm, generate on real models)
.PHONY: cli
cli: deps
	$(SWIFT) build -c release --product decoder-spec --scratch-path $(RELEASE_DIR) $(NATIVE)

## pe-study: the positional-encoding study (docs/positional-encoding-study.md): train lm for every
## position scheme and seed at one token budget; prints the table (SCHEMES, SEEDS, STEPS select)
.PHONY: pe-study
pe-study: cli fetch-data
	./scripts/pe-study

## bench: release build with native code generation; prints the tables and records docs/benchmarks.md
## (SUITES="kernels decode" runs a subset and leaves docs/benchmarks.md, the full table, alone)
bench:
	@./scripts/ensure-deps --bench
	$(SWIFT) build -c release --product decoder-spec-bench --scratch-path $(RELEASE_DIR) $(NATIVE)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(RELEASE_DIR)/release/decoder-spec-bench $(if $(SUITES),,--markdown docs/benchmarks.md) $(SUITES)

## docs: DocC API documentation into the git-ignored .build-docs/
docs: deps
	$(SWIFT) package --allow-writing-to-directory .build-docs generate-documentation \
	  --target DecoderSpec --transform-for-static-hosting --output-path .build-docs

clean:
	rm -rf .build .build-* 

## fetch-data: real weights and corpora into the git-ignored data/ (MiniLM, CoNLL-2003, Bible)
.PHONY: fetch-data
fetch-data:
	./scripts/fetch-data

## zoo: the bug zoo (docs/bug-zoo.md) — every catalogued real-world bug against the reusable checks
## (Tests/SpecSupport/Checks); runs Tests/BugZooSpecs, which prints the table and the mutation score
## and fails when a bug survives or the correct code fails a check
.PHONY: zoo
zoo: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter BugZooSpecs

## fuzz: libFuzzer runs over the IO readers, each target for SECONDS (default 60), one after
## another; TARGETS="conll bpe" selects (safetensors conll wordpiece bpe config sqlite). Summary lines
## go to .build-fuzz/runs.log, crashing inputs to fuzz-artifacts/. See docs/reliability.md.
SECONDS ?= 60
TARGETS ?=
.PHONY: fuzz
fuzz:
	./scripts/fuzz $(SECONDS) $(TARGETS)

## fuzz-cli: random edge-case command lines for decoder-spec (RUNS, SEED); fails on a trap, a hang
## or an error that is not one stderr line. See docs/reliability.md.
RUNS ?= 300
SEED ?= 1
.PHONY: fuzz-cli
fuzz-cli: deps
	$(SWIFT) build --product decoder-spec
	./scripts/fuzz-cli $(SEED) $(RUNS)
