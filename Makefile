# Build, test and demo entry points. See README.md.

GO        ?= go
# Everything builds and tests without cgo, as the shipped binary does.
export CGO_ENABLED = 0
GO_TAGS   ?= containers_image_openpgp
BIN       ?= bin/bootc
FUZZTIME  ?= 10s
BENCH_MODE ?= bare-user

.PHONY: all build deps vet test vm-test fuzz-smoke fuzz demo bench bench-update-size bench-encapsulate bench-pull-deploy clean

all: build

# bootc --version: from git describe, with the commit (fallback in the binary: Go's build info).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   ?= -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build:
	CGO_ENABLED=0 $(GO) build -tags $(GO_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/bootc

deps:
	scripts/install-deps.sh

vet:
	$(GO) vet -tags $(GO_TAGS) ./...

test: deps build
	$(MAKE) --no-print-directory vet
	$(GO) test -tags $(GO_TAGS) -count=1 -timeout 40m ./...
	$(MAKE) --no-print-directory fuzz-smoke
	GO=$(GO) GO_TAGS=$(GO_TAGS) scripts/vm-test.sh

# Boots our image under qemu (TCG): install to-disk, switch, reboot, rollback, a broken update.
vm-test: deps
	GO=$(GO) GO_TAGS=$(GO_TAGS) scripts/vm-test.sh

fuzz-smoke:
	FUZZTIME=$(FUZZTIME) GO_TAGS=$(GO_TAGS) scripts/fuzz-smoke.sh

fuzz:
	FUZZTIME=60s GO_TAGS=$(GO_TAGS) scripts/fuzz-smoke.sh

demo: deps build
	BOOTC=$(BIN) scripts/demo.sh

# All benchmarks; each also has its own target.
bench: deps build
	bench/ostree-commit/run.sh $(BENCH_MODE)
	bench/update-size/run.sh
	bench/encapsulate/run.sh
	bench/pull-deploy/run.sh

bench-update-size: deps build
	bench/update-size/run.sh

bench-encapsulate: deps build
	bench/encapsulate/run.sh

bench-pull-deploy: deps build
	bench/pull-deploy/run.sh

clean:
	rm -rf bin
