#!/usr/bin/env bash
# Builds the Debian packages keyfleet (daemon, CLI, TOTP and push plugins, systemd
# unit) and keyfleet-agent into DIST (default dist/) from the binaries in
# BIN (default bin/; `make package` builds them first). nfpm comes from the
# module proxy, pinned in tools/go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${BIN:-bin}")
DIST=${DIST:-dist}
for b in keyfleetd keyfleet keyfleet-agent keyfleet-plugin-totp keyfleet-plugin-push; do
  [ -x "$BIN/$b" ] || { echo "package: $BIN/$b is missing; run make build first" >&2; exit 1; }
done

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/man/keyfleet "$STAGE"/man/agent "$STAGE"/completion "$STAGE"/doc
"$BIN"/keyfleetd __man "$STAGE"/man/keyfleet
"$BIN"/keyfleet __man "$STAGE"/man/keyfleet
"$BIN"/keyfleet-agent __man "$STAGE"/man/agent
gzip -9n "$STAGE"/man/*/*.1
for b in keyfleetd keyfleet keyfleet-agent; do
  "$BIN/$b" completion bash >"$STAGE/completion/$b.bash"
  "$BIN/$b" completion zsh >"$STAGE/completion/_$b"
  "$BIN/$b" completion fish >"$STAGE/completion/$b.fish"
done
"$BIN"/keyfleetd default-config --data /var/lib/keyfleet >"$STAGE"/keyfleetd.yaml
cp README.md docs/*.md "$STAGE"/doc/

# keyfleetd v0.0.0-20261206225036-76a4774a2da5+dirty → 0.0.0~git20261206225036.76a4774a2da5+dirty
version=$("$BIN"/keyfleetd version | cut -d' ' -f2)
DEB_VERSION=$(sed -E -e 's/^v//' -e 's/^\(devel\)$/0.0.0~devel/' \
  -e 's/^([0-9]+\.[0-9]+\.[0-9]+)-(0\.)?([0-9]{14})-([0-9a-f]{12})/\1~git\3.\4/' <<<"$version")
DEB_ARCH=$(go env GOARCH)
export BIN STAGE DEB_VERSION DEB_ARCH

go -C tools build -o "$BIN/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm
mkdir -p "$DIST"
for cfg in keyfleet keyfleet-agent; do
  "$BIN"/nfpm package --config "deploy/nfpm/$cfg.yaml" --packager deb --target "$DIST/"
done
