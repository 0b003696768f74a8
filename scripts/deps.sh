#!/usr/bin/env bash
# Installs the Debian packages keyfleet needs, when run as root and one is
# missing. As another user it lists what is missing and carries on.
#
#   scripts/deps.sh run    what `make run` needs to build every binary: the
#                          C toolchain and the agent's libraries. keyfleetd
#                          and keyfleet are pure Go and need none of them, so
#                          a failed install only warns (make run then skips
#                          the agent and says so).
#   scripts/deps.sh test   (the default) everything the tests start as well;
#                          a failed install fails.
set -euo pipefail

mode=${1:-test}
run_packages=(
  ca-certificates   # TLS roots for the Go module proxy
  gcc libc6-dev     # cgo for the workstation agent
  pkg-config libpcsclite-dev   # PC/SC headers (piv-go), for keyfleet-agent
  libfido2-dev      # go-libfido2 (cgo), the agent's FIDO2 adapter for real keys
)
test_packages=(
  openssl           # key generation examples in the docs and tests
  pcscd             # the PC/SC daemon the agent's end-to-end tests start
  vsmartcard-vpcd   # the virtual reader keyfleet-vkey plugs into
  pcsc-tools        # pcsc_scan, for looking at the virtual card by hand
  yubico-piv-tool opensc   # second and third PIV clients in the vkey end-to-end tests
  yubikey-manager   # ykman: Yubico's own client, in the vkey end-to-end tests
  python3-fido2     # CTAP2 over PC/SC: a real client for the vkey's FIDO2 applet
  oathtool          # an independent TOTP implementation the integration tests check codes against
  chromium          # browser tests of the web pages (daemon/web), with its virtual WebAuthn key
  postgresql        # the PostgreSQL store's tests start a private cluster (internal/pgtest); pg_dump for the dump test
  e2fsprogs         # mkfs.ext4: the store's full-disk tests on a small ext4 image
  prometheus        # promtool: checks and unit-tests deploy/prometheus's alert rules
  systemd           # systemd-analyze: verifies the packaged unit (deploy/)
  jq oathtool       # the docs/cli.md examples the doc test runs (JSON, an authenticator app's codes)
  slapd ldap-utils  # OpenLDAP: the directory sync's and the RADIUS listener's tests run a private slapd (the directory's change it with ldapmodify)
  freeradius-utils  # radclient and radtest: FreeRADIUS's clients in the RADIUS listener's tests
  freeradius        # a real FreeRADIUS proxying to keyfleet in the RADIUS listener's tests
  libpam0g-dev      # PAM's headers, to build pam_keyfleet.so
  pamtester         # drives pam_keyfleet.so through Linux-PAM in its tests
  openssh-server    # sshd on a loopback port: keyboard-interactive through pam_keyfleet.so
  openssh-client    # ssh and ssh-keygen, answering sshd's prompt in the PAM tests
)

case $mode in
  run) packages=("${run_packages[@]}") ;;
  test) packages=("${run_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: scripts/deps.sh [run|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]} (run 'make $mode' as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
install() {
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
if [ "$mode" = run ]; then
  install || echo "deps: could not install ${missing[*]}; carrying on without them" >&2
else
  install
fi
