# Build, test and demo entry points. See README.md.

GO        ?= go
GO_TAGS   ?= containers_image_openpgp
BIN       ?= bin/bootc
FUZZTIME  ?= 10s
BENCH_MODE ?= bare-user

.PHONY: all build deps vet test fuzz-smoke fuzz demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -tags $(GO_TAGS) -o $(BIN) ./cmd/bootc

deps:
	scripts/install-deps.sh

vet:
	$(GO) vet -tags $(GO_TAGS) ./...

test: deps build
	$(MAKE) --no-print-directory vet
	$(GO) test -tags $(GO_TAGS) -count=1 -timeout 40m ./...
	$(MAKE) --no-print-directory fuzz-smoke

fuzz-smoke:
	FUZZTIME=$(FUZZTIME) GO_TAGS=$(GO_TAGS) scripts/fuzz-smoke.sh

fuzz:
	FUZZTIME=60s GO_TAGS=$(GO_TAGS) scripts/fuzz-smoke.sh

demo: deps build
	BOOTC=$(BIN) scripts/demo.sh

bench: deps build
	bench/ostree-commit/run.sh $(BENCH_MODE)

clean:
	rm -rf bin
