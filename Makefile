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

.PHONY: all build run test deps vet bench lint fuzz generate clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/ ./cmd/...

run: build
	@if [ ! -e $(DATA) ]; then $(BIN)/keyfleetd init --data $(DATA); echo; fi
	@exec $(BIN)/keyfleetd serve --data $(DATA) --listen $(LISTEN) --log-format text

deps:
	@scripts/deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt would change:"; gofmt -l .; exit 1; }

test: deps build vet
	$(GO) test -race -count=1 $$($(GO) list $(RACE_PKGS) | grep -v /daemon/web)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e /daemon -e /api -e /internal -e /plugins -e /docs -e /agent)
	# The browser tests drive Chromium: alone, so that nothing else loads the two cores.
	$(GO) test -count=1 ./daemon/web/...
	scripts/fuzz.sh 3s

bench: build
	scripts/bench.sh

lint: vet

fuzz:
	scripts/fuzz.sh 60s

# Regenerates the plugin protocol's Go code (committed) from its .proto.
generate:
	scripts/generate.sh

clean:
	rm -rf $(BIN)

# The PAM module (docs/pam.md): pam_keyfleet.so is a small C module that
# runs keyfleet-pam-helper (built with the other commands above) for each
# sign-in. `make install` puts both where Debian's PAM and the module look.
CC        ?= cc
PAMDIR    ?= /lib/$(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/security
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
