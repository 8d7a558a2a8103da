# DecoderSpec — the two set-up commands are `make demo` and `make test`; both install what is missing.
SWIFT      ?= swift
# Native code generation for benchmarks: without a target-CPU flag, FMA becomes a libm call.
# On a CPU with AVX-512 (avx512f in /proc/cpuinfo) the GEMM takes its 512-bit register tile
# (docs/kernels.md, "Tile shape per CPU"); elsewhere the 256-bit one.
AVX512      = $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo -Xswiftc -DDECODERSPEC_AVX512)
NATIVE      = -Xswiftc -target-cpu -Xswiftc native -Xswiftc -DDECODERSPEC_NATIVE $(AVX512)
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

## figures: run the notebooks and copy the figures their cells draw (Sources/Figures) into docs/figures/;
## make test fails when a figure a notebook embeds is not the one its cells draw
.PHONY: figures
figures: deps
	$(SWIFT) build --product decoder-spec
	$$($(SWIFT) build --show-bin-path)/decoder-spec notebooks --figures

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

## bench: release build with native code generation; prints the tables and records docs/benchmarks.md and
## docs/benchmarks.json (every measurement, the FP32 peak and read bandwidth: the figures' source)
## (SUITES="kernels decode" runs a subset and leaves both alone; its record goes to .build-release/benchmarks.json).
## PyTorch is measured beside ours in the same run when the peers' venv exists (make peer-venv); never needed by make test.
bench:
	@./scripts/ensure-deps --bench
	$(SWIFT) build -c release --product decoder-spec-bench --scratch-path $(RELEASE_DIR) $(NATIVE)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(RELEASE_DIR)/release/decoder-spec-bench $(if $(SUITES),--record $(RELEASE_DIR)/benchmarks.json,--markdown docs/benchmarks.md --record docs/benchmarks.json) $(SUITES)

## peer-venv: the git-ignored .venv-peers/ with a CPU torch and transformers (scripts/peer-venv): the peers
## make bench measures (scripts/bench-peers.py) and the reference-framework fixtures' maker
.PHONY: peer-venv
peer-venv:
	./scripts/peer-venv

## docs: the book and the API as one static DocC site in the git-ignored .build-docs/, warnings as
## errors (an unresolved link or a missing image fails). The catalog Sources/DecoderSpec/DecoderSpec.docc
## is generated from notebooks-md/ and docs/ by `decoder-spec book` and must be in step. One archive per
## module the umbrella re-exports, combined, so the book's symbol links reach each module's API pages.
DOC_TARGETS = $(shell sed -n 's/^@_exported import //p' Sources/DecoderSpec/DecoderSpec.swift) DecoderSpec
docs: deps
	$(SWIFT) build --product decoder-spec
	$$($(SWIFT) build --show-bin-path)/decoder-spec book --check
	rm -rf .build-docs
	$(SWIFT) package --allow-writing-to-directory .build-docs generate-documentation \
	  $(addprefix --target ,$(DOC_TARGETS)) --enable-experimental-combined-documentation \
	  --transform-for-static-hosting --output-path .build-docs --warnings-as-errors
	cp Sources/DecoderSpec/DecoderSpec.docc/theme-settings.json .build-docs/   # the combined archive leaves it out
	@# The site's root has no page of its own: send a reader to the book (every page has its own index.html).
	printf '<!doctype html><meta charset="utf-8"><title>DecoderSpec</title><meta http-equiv="refresh" content="0; url=documentation/decoderspec/"><a href="documentation/decoderspec/">DecoderSpec</a>\n' > .build-docs/index.html

## serve-docs: serve the site make docs built at http://localhost:8000/documentation/decoderspec (Ctrl-C stops)
.PHONY: serve-docs
serve-docs:
	@[ -f .build-docs/index.html ] || { echo "serve-docs: run make docs first" >&2; exit 1; }
	@echo "serving the book at http://localhost:8000/documentation/decoderspec"
	python3 -m http.server 8000 --bind 127.0.0.1 --directory .build-docs

## docs-check: the book in a real browser — installs headless Chromium (Debian package) if missing, serves
## .build-docs and checks every page renders: title, code listings, figures (no broken image), no app
## error, a symbol link; screenshots into SCREENS (default .build/docs-screens). Not part of make test.
SCREENS ?= .build/docs-screens
.PHONY: docs-check
docs-check:
	./scripts/docs-check $(SCREENS)

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

## fuzz: libFuzzer runs over the IO readers, training checkpoints, model directories and the resume
## path, each target for SECONDS (default 60), one after
## another; TARGETS="conll bpe" selects (safetensors conll wordpiece bpe config sqlite checkpoint
## modeldir resume). Summary lines
## go to .build-fuzz/runs.log, crashing inputs to fuzz-artifacts/. See docs/reliability.md.
SECONDS ?= 60
TARGETS ?=
.PHONY: fuzz
fuzz:
	./scripts/fuzz $(SECONDS) $(TARGETS)

## sanitize: the IO, training, hardening and kernel suites under AddressSanitizer (.build-sanitize/) and the
## parallel GEMM's specs under ThreadSanitizer (.build-tsan/); PASSES="asan" or "tsan" runs one, ASAN_SUITES /
## TSAN_SUITES (--filter regexes) select suites. Not part of make test. See docs/reliability.md ("Sanitizers").
PASSES ?=
.PHONY: sanitize
sanitize: deps
	SWIFT="$(SWIFT)" ./scripts/sanitize $(PASSES)

## fuzz-cli: random edge-case command lines for decoder-spec (RUNS, SEED); fails on a trap, a hang
## or an error that is not one stderr line. See docs/reliability.md.
RUNS ?= 300
SEED ?= 1
.PHONY: fuzz-cli
fuzz-cli: deps
	$(SWIFT) build --product decoder-spec
	./scripts/fuzz-cli $(SEED) $(RUNS)
