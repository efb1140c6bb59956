# wsbridge: `make help` lists the targets. GNU make.

GO         ?= go
GOFMT      ?= $(shell $(GO) env GOROOT)/bin/gofmt
CC         ?= cc
CFLAGS     ?= -O2 -std=c99 -Wall -Wextra
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -s -w -X main.version=$(VERSION)
TESTFLAGS  ?= -race -count=1 -timeout 15m
FUZZTIME   ?= 30s
BENCHFLAGS ?=
ADDRESS    ?= 127.0.0.1
PORT       ?= 8080
# staticcheck, pinned (v0.8.2 is its release 2026.2.2): make test-deps
# installs it with go install.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

# What the tests need beyond Go, by Debian package name. gcc alone does not
# pull in libc6-dev under --no-install-recommends, and nothing compiles
# without it. busybox: count.sh is tested under BusyBox's sh too. chromium:
# the demo page and the origin policy are tested in a real browser.
TEST_DEPS := websocketd python3-websockets node-ws gcc libc6-dev make busybox chromium
# The deployment recipes of examples/deploy/: systemd-analyze checks the
# unit, dash runs the init scripts, kconfiglib reads Buildroot's Config.in.
TEST_DEPS += systemd dash python3-kconfiglib
# openbsd-inetd runs wsbridge --inetd per connection, from an inetd.conf
# line as BusyBox's inetd reads it (systemd-socket-activate, of systemd,
# tests socket activation). Not xinetd too: Debian's two conflict.
TEST_DEPS += openbsd-inetd
# qemu-user-static: make test-cross runs the cross-built binaries under it.
TEST_DEPS += qemu-user-static
# The web servers the hand-over tests run wsbridge behind: lighttpd, and
# boa, built from third_party's tarball with bison and flex (gcc, make and
# busybox are above).
TEST_DEPS += lighttpd bison flex
# musl-tools: the C hand-over program's static build stays tens of KiB.
TEST_DEPS += musl-tools
# make bench's arm hand-over column cross-compiles the C sender static; the
# cross libc is only a Recommends of the compiler.
TEST_DEPS += gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
# The scale-out test runs three wsbridge behind HAProxy, which checks
# --health; the metrics are read with the Prometheus client library's own
# text parser.
TEST_DEPS += haproxy python3-prometheus-client
# libnss3-tools: certutil puts the wss tests' CA in the NSS database the
# headless Chromium trusts.
TEST_DEPS += libnss3-tools
# The reverse-proxy tests (cmd/wsbridge/reverseproxy_*_test.go) run the
# recipes of examples/deploy behind the real proxies: HAProxy and lighttpd
# are above; nginx-light is the smallest Debian nginx with the proxy
# module, apache2 brings mod_proxy_http.
TEST_DEPS += nginx-light apache2
# xz-utils: make cross's size table has an xz column, roughly what an
# OpenWrt squashfs image holds (priority standard: a minimal image lacks it).
TEST_DEPS += xz-utils

EXAMPLE_BINS := examples/bin/greeter examples/bin/line-echo examples/bin/len32-echo \
	examples/bin/raw-upper examples/bin/sensor examples/bin/mux-chat

.DEFAULT_GOAL := build
.PHONY: help build handover run test test-examples test-deps lint vet fmt-check staticcheck bench fuzz clean \
	bin/wsbridge examples/bin/greeter

help: ## list the targets and the variables they take
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  make %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: GO=$(GO) CC=$(CC) VERSION=$(VERSION) FUZZTIME=$(FUZZTIME) BENCHFLAGS=$(BENCHFLAGS) ADDRESS=$(ADDRESS) PORT=$(PORT)"

build: bin/wsbridge $(EXAMPLE_BINS) ## build bin/wsbridge (static, stripped, version-stamped) and the examples into examples/bin/

# Phony: go build itself knows what is stale.
# nethttpomithttp2: wsbridge speaks HTTP/1.1 only; cross/build.sh sets it too.
bin/wsbridge:
	CGO_ENABLED=0 $(GO) build -trimpath -tags nethttpomithttp2 -ldflags "$(LDFLAGS)" -o $@ ./cmd/wsbridge

examples/bin/greeter:
	$(GO) build -trimpath -o $@ ./examples/go/greeter

# The hand-over program is the one a web server runs: static, so it runs
# whatever libc the board's web server lives with (CC=musl-gcc: 38 KB
# stripped, glibc's static stdio makes it 690 KB). WSBRIDGE_HANDOVER (make
# WSBRIDGE_HANDOVER=/var/run/ws.sock) is the socket it uses when neither its
# argument nor its environment names one.
WSBRIDGE_HANDOVER ?= /run/wsbridge.sock
handover: examples/bin/wsbridge-handover ## build the C hand-over program (static) for boa and lighttpd into examples/bin/

# musl where it is (Debian: musl-tools): 38 KB static, against 670 KB with
# glibc. HANDOVER_CC=arm-linux-musleabihf-gcc, say, for a board.
HANDOVER_CC ?= $(shell command -v musl-gcc 2>/dev/null || echo $(CC))
examples/bin/wsbridge-handover: examples/c/wsbridge-handover.c
	@mkdir -p $(@D)
	$(HANDOVER_CC) $(CFLAGS) -Os -static -s -DWSBRIDGE_HANDOVER='"$(WSBRIDGE_HANDOVER)"' -o $@ $<

examples/bin/%: examples/c/%.c examples/c/wsbridge.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

# Only what it runs: the demo needs Go alone, no C compiler.
run: bin/wsbridge examples/bin/greeter ## build wsbridge and the Go greeter, then serve the demo page on http://$(ADDRESS):$(PORT)/ (PORT=8081 if 8080 is taken)
	bin/wsbridge --address=$(ADDRESS) --port=$(PORT) --demo examples/bin/greeter

# -race needs cgo, whatever the environment says.
test: lint ## every test but the qemu matrix (make test-cross): vet, gofmt check, staticcheck, go test -race ./...
	CGO_ENABLED=1 $(GO) test $(TESTFLAGS) ./...

# The qemu matrix is cmd/wsbridge's TestCross (see cross_test.go): slow,
# so make test skips it. -v: which check passed on which target belongs
# in the log.
# 20 minutes: with a cold build cache, building each target's binaries
# takes 1 to 2 minutes (about 9 of the run, two targets at a time), and a
# qemu fork deadlock costs a retry (see cross_test.go's unit).
.PHONY: test-cross
test-cross: ## wsbridge and the unit tests built for arm v5/v7, arm64, mips(le), riscv64, run under qemu-user-static
	WSBRIDGE_CROSS=1 CGO_ENABLED=0 $(GO) test -count=1 -timeout 20m -v -run '^TestCross$$' ./cmd/wsbridge

test-examples: ## only the examples' tests, verbose
	$(GO) test -count=1 -v ./examples/

test-deps: ## install the programs tests need (apt-get, as root; otherwise print the command) and staticcheck (go install)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@if ! command -v dpkg >/dev/null 2>&1; then \
		echo "test-deps: not a Debian system; install the equivalents of: $(TEST_DEPS)"; exit 0; \
	fi; \
	missing=; \
	for p in $(TEST_DEPS); do \
		dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "test-deps: all installed: $(TEST_DEPS)"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "test-deps: missing:$$missing. Run:"; \
		echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing"; \
		exit 0; \
	fi; \
	echo "test-deps: installing:$$missing"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

lint: vet fmt-check staticcheck ## go vet (also for a 32-bit and a big-endian board), the gofmt check and staticcheck

# Outside CI a missing staticcheck is skipped, loudly; under CI=true it fails.
staticcheck: ## staticcheck ./... (make test-deps installs it)
	@if [ ! -x "$(STATICCHECK)" ]; then \
		msg="MISSING TOOL $(STATICCHECK): install it with \`make test-deps\`"; \
		if [ "$$CI" = true ]; then echo "$$msg"; exit 1; fi; \
		echo "SKIPPING staticcheck: $$msg"; exit 0; \
	fi; \
	$(STATICCHECK) ./...

# The boards are 32-bit and some big-endian: vet for arm v7 and mips too, so
# a constant that overflows a 32-bit int fails make test, not only
# make test-cross; and for arm64, whose syscall package lacks the old
# calls (Dup2, Pipe) that x/sys/unix provides everywhere.
vet: ## go vet ./..., natively and for linux/arm (v7), linux/mips and linux/arm64
	$(GO) vet ./...
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) vet ./...
	GOOS=linux GOARCH=mips GOMIPS=softfloat CGO_ENABLED=0 $(GO) vet ./...
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./...

fmt-check: ## fail listing the Go files gofmt would change
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/node_modules/*' -print0 | xargs -0 -r $(GOFMT) -l); \
	if [ -n "$$files" ]; then echo "gofmt -w these files:"; echo "$$files"; exit 1; fi

bench: ## run the benchmark tool, go run ./cmd/wsbench, passing BENCHFLAGS
	$(GO) run ./cmd/wsbench $(BENCHFLAGS)

# Fuzz targets are found, not listed here: a new Fuzz* function runs as soon
# as it exists. go test -fuzz takes one package and one target at a time.
fuzz: ## run every Fuzz* test of the repo for FUZZTIME (default 30s) each
	@set -e; n=0; \
	for dir in $$(grep -rl --include='*_test.go' --exclude-dir=testdata --exclude-dir=node_modules '^func Fuzz' . | xargs -r -n1 dirname | sort -u); do \
		for name in $$($(GO) test -list '^Fuzz' $$dir | grep '^Fuzz'); do \
			echo "== $$dir $$name ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$dir; \
			n=$$((n + 1)); \
		done; \
	done; \
	echo "fuzz: $$n targets ran for $(FUZZTIME) each"

clean: ## remove bin/ and examples/bin/
	rm -rf bin examples/bin

# ---- cross: board binaries (cross/README.md) --------------------------------

.PHONY: cross footprint

cross: ## static binaries for every board target into bin/<os>-<arch>[-variant]/ (wsbridge, wsbridge-minimal), and the README size table
	sh cross/build.sh -o bin --version $(VERSION)
	sh cross/build.sh -o bin --version $(VERSION) --tags wsbridge_minimal --name wsbridge-minimal
	sh cross/sizes.sh bin README.md

footprint: ## the daemon's RSS idle and with 100 connections, native and under qemu-user, into the README
	sh cross/build.sh -o bin --version $(VERSION) linux-amd64 linux-arm-v7 linux-mipsle-softfloat
	sh cross/footprint.sh bin README.md
