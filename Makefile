# bpffs-fuse: build, test, benchmark, fuzz, lint and demo.
GO      ?= go
BIN     ?= bin/bpffs-fuse
# The daemon side (FUSE server, mount helper, VM tools); bpffs-fuse runs it from its own directory.
DAEMON  ?= $(dir $(BIN))bpffs-fused
FUZZTIME ?= 30s

.PHONY: all build test test-short bench fuzz lint demo clean

all: build

# Static and without cgo: a cgo build (go-fuse imports os/user and net) is dynamically linked,
# and loading libc adds about 0.7 ms to every CLI exec; nothing in the binary needs C.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/bpffs-fuse
	CGO_ENABLED=0 $(GO) build -o $(DAEMON) ./cmd/bpffs-fused

# The full suite: unit tests, FUSE end-to-end tests and kernel differential tests, under the
# race detector. Kernel and FUSE tests skip with a reason when unavailable, unless
# BPFFS_REQUIRE_KERNEL=1 / BPFFS_REQUIRE_FUSE=1 (as CI sets them).
test: lint
	$(GO) test -race -timeout 40m ./...
	# Race builds take the hash buckets' lock on every lookup; run the map tests once more
	# without -race so the lock-free (sequence-checked) lookups are exercised too.
	$(GO) test -count=1 -timeout 10m ./objects ./engine

test-short:
	$(GO) test -short ./...

# Benchmarks, side by side with the kernel where it can do the same work (see BENCHMARKS.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

# Every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Build, mount a bpffs-fuse in a temp dir, create maps, and show cat and echo on them.
demo: build
	./scripts/demo.sh $(BIN)

clean:
	rm -rf bin
