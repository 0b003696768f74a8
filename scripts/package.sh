#!/usr/bin/env bash
# Builds the Debian packages keyfleet (daemon, CLI, TOTP and push plugins, systemd
# unit), keyfleet-agent and libpam-keyfleet (the PAM module and its helper)
# into DIST (default dist/) from the binaries in BIN (default bin/; `make
# package` builds them first, the PAM module with gcc and libpam0g-dev).
# nfpm comes from the module proxy, pinned in tools/go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${BIN:-bin}")
DIST=${DIST:-dist}
for b in keyfleetd keyfleet keyfleet-agent keyfleet-plugin-totp keyfleet-plugin-push keyfleet-pam-helper pam_keyfleet.so; do
  [ -x "$BIN/$b" ] || { echo "package: $BIN/$b is missing; run make build first" >&2; exit 1; }
done
# The module runs the helper at the path compiled into it (the Makefile's
# HELPERDIR): the package installs the helper there.
helper=/usr/libexec/keyfleet/keyfleet-pam-helper
grep -qaF "$helper" "$BIN/pam_keyfleet.so" || {
  echo "package: $BIN/pam_keyfleet.so does not run $helper (built with another HELPERDIR?); run make build with the default" >&2
  exit 1
}

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
# The audit checkpoint lives apart from the store, in a second state folder
# the unit may write (StateDirectory=keyfleet keyfleet-anchor).
"$BIN"/keyfleetd default-config --data /var/lib/keyfleet \
  --checkpoint-file /var/lib/keyfleet-anchor/audit.checkpoint >"$STAGE"/keyfleetd.yaml
cp README.md docs/*.md "$STAGE"/doc/

# keyfleetd v0.0.0-20261206225036-76a4774a2da5+dirty → 0.0.0~git20261206225036.76a4774a2da5+dirty
version=$("$BIN"/keyfleetd version | cut -d' ' -f2)
DEB_VERSION=$(sed -E -e 's/^v//' -e 's/^\(devel\)$/0.0.0~devel/' \
  -e 's/^([0-9]+\.[0-9]+\.[0-9]+)-(0\.)?([0-9]{14})-([0-9a-f]{12})/\1~git\3.\4/' <<<"$version")
DEB_ARCH=$(go env GOARCH)
# Linux-PAM's modules live in /usr/lib/<multiarch triplet>/security.
case $DEB_ARCH in
  amd64) DEB_MULTIARCH=x86_64-linux-gnu ;;
  arm64) DEB_MULTIARCH=aarch64-linux-gnu ;;
  386) DEB_MULTIARCH=i386-linux-gnu ;;
  ppc64le) DEB_MULTIARCH=powerpc64le-linux-gnu ;;
  s390x) DEB_MULTIARCH=s390x-linux-gnu ;;
  riscv64) DEB_MULTIARCH=riscv64-linux-gnu ;;
  *) echo "package: no Debian multiarch triplet known for $DEB_ARCH" >&2; exit 1 ;;
esac
export BIN STAGE DEB_VERSION DEB_ARCH DEB_MULTIARCH

go -C tools build -o "$BIN/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm
mkdir -p "$DIST"
for cfg in keyfleet keyfleet-agent libpam-keyfleet; do
  "$BIN"/nfpm package --config "deploy/nfpm/$cfg.yaml" --packager deb --target "$DIST/"
done
