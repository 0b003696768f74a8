# keyfleet — see README.md. `make run` starts the daemon; `make test` runs
# every test (installing missing Debian packages when run as root).
SHELL  := /bin/bash
GO     ?= go
BIN    := bin
DATA   ?= var/keyfleet
LISTEN ?= 127.0.0.1:8443
# The browser tests write screenshots of the main pages here.
export KEYFLEET_SCREENSHOTS ?= $(CURDIR)/var/screenshots
# Packages with goroutines, locks or a server: tested under the race detector.
RACE_PKGS := ./daemon/... ./api/... ./internal/... ./plugins/... ./docs/... ./agent/...

# Pure Go, built with CGO_ENABLED=0 (static binaries that need no C
# library); the agent links libpcsclite and libfido2 through cgo.
PURE_CMDS  := ./cmd/keyfleetd ./cmd/keyfleet ./cmd/keyfleet-vkey ./cmd/keyfleet-plugin-totp ./cmd/keyfleet-plugin-push
AGENT_CMD  := ./cmd/keyfleet-agent
AGENT_LIBS := libpcsclite libfido2
AGENT_DEBS := gcc libc6-dev pkg-config libpcsclite-dev libfido2-dev
# The commit, stamped into every binary (internal/version); VERSION=v1.2.3
# replaces the version (a build from a source tarball).
LDFLAGS    := $(shell scripts/ldflags.sh)
GOBUILD     = $(GO) build -trimpath -buildvcs=auto -ldflags '$(LDFLAGS)'
MANDIR     := man

.PHONY: all build build-pure build-agent-if-possible run test deps deps-run vet bench bench-large lint fuzz generate man package clean

all: build

# Every binary; fails when the agent's C libraries are missing.
build: build-pure
	$(GOBUILD) -o $(BIN)/ $(AGENT_CMD)

build-pure:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GOBUILD) -o $(BIN)/ $(PURE_CMDS)

# What make run builds: the pure binaries always, the agent when its C
# libraries and a C compiler are there (one line says when it is skipped).
build-agent-if-possible: build-pure
	@if command -v "$$($(GO) env CC)" >/dev/null 2>&1 && pkg-config --exists $(AGENT_LIBS) 2>/dev/null; then \
		echo "go build -o $(BIN)/ $(AGENT_CMD)"; \
		$(GOBUILD) -o $(BIN)/ $(AGENT_CMD); \
	else \
		echo "make run: skipped keyfleet-agent (its C libraries are missing: apt-get install $(AGENT_DEBS)); keyfleetd, keyfleet and keyfleet-vkey are built"; \
	fi

run: deps-run
	@$(MAKE) --no-print-directory build-agent-if-possible
	@if [ ! -e $(DATA) ]; then $(BIN)/keyfleetd init --data $(DATA); echo; fi
	@exec $(BIN)/keyfleetd serve --data $(DATA) --listen $(LISTEN) --log-format text

deps:
	@scripts/deps.sh test

deps-run:
	@scripts/deps.sh run

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy; run go mod tidy:"; $(GO) mod tidy -diff; exit 1; }
	@$(GO) -C tools mod tidy -diff >/dev/null || { echo "tools/go.mod is not tidy; run go -C tools mod tidy:"; $(GO) -C tools mod tidy -diff; exit 1; }

test: deps build vet
	$(GO) test -race -count=1 $$($(GO) list $(RACE_PKGS) | grep -v /daemon/web)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e /daemon -e /api -e /internal -e /plugins -e /docs -e /agent)
	# The browser tests drive Chromium: alone, so that nothing else loads the two cores.
	$(GO) test -count=1 ./daemon/web/...
	scripts/fuzz.sh 3s

# The Go benchmarks, then the deployed daemon (scripts/bench-deployed.sh):
# keyfleetd and keyfleet-plugin-totp from $(BIN), driven by
# keyfleet-loadgen from another process. Data that takes minutes to build
# is kept in var/bench (docs/benchmarks.md).
bench: build
	BIN=$(BIN) scripts/bench.sh

# keyfleetd at an organisation's size: a store of a million imported
# users (built once, about 1.5 GB, kept in var/bench/large between runs),
# its lists, audit filters, start-up, audit verify and memory;
# MEMORY_LIMIT=512M runs keyfleetd in a memory group of that size, as the
# systemd unit's MemoryHigh does (scripts/bench-lib.sh).
bench-large: build-pure
	BIN=$(BIN) scripts/bench-large.sh

lint: vet

fuzz:
	scripts/fuzz.sh 60s

# Man pages (section 1) for every command, generated from the programs'
# own command definitions, into man/.
man: build
	@rm -rf $(MANDIR) && mkdir -p $(MANDIR)
	@for b in keyfleetd keyfleet keyfleet-agent keyfleet-vkey; do $(BIN)/$$b __man $(MANDIR) || exit 1; done
	@echo "man pages: $$(ls $(MANDIR) | wc -l) in $(MANDIR)/ (man -l $(MANDIR)/keyfleet.1)"

# Debian packages keyfleet and keyfleet-agent into dist/ (nfpm, pinned in
# tools/go.mod; deploy/ holds the unit, maintainer scripts and nfpm files).
package: build
	scripts/package.sh

# Regenerates the plugin protocol's Go code (committed) from its .proto.
generate:
	scripts/generate.sh

clean:
	rm -rf $(BIN) $(MANDIR) dist

# The PAM module (docs/pam.md): pam_keyfleet.so is a small C module that
# runs keyfleet-pam-helper (pure Go, built with the other commands) for
# each sign-in. `make install` puts both where Debian's PAM and the module
# look, as the libpam-keyfleet package does (scripts/package.sh checks that
# the module runs the helper where the package puts it).
PURE_CMDS += ./cmd/keyfleet-pam-helper
CC        ?= cc
PAMDIR    ?= /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/security
HELPERDIR ?= /usr/libexec/keyfleet
PAM_CFLAGS := -shared -fPIC -O2 -Wall -Wextra -Wformat=2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong

.PHONY: pam install install-pam

build: pam

pam: $(BIN)/pam_keyfleet.so

$(BIN)/pam_keyfleet.so: pam/module/pam_keyfleet.c
	@mkdir -p $(BIN)
	$(CC) $(PAM_CFLAGS) -DKEYFLEET_PAM_HELPER='"$(HELPERDIR)/keyfleet-pam-helper"' -o $@ $< -lpam

install: install-pam

install-pam: build
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(HELPERDIR)
	install -m 0644 -o root -g root $(BIN)/pam_keyfleet.so $(DESTDIR)$(PAMDIR)/pam_keyfleet.so
	install -m 0755 -o root -g root $(BIN)/keyfleet-pam-helper $(DESTDIR)$(HELPERDIR)/keyfleet-pam-helper
