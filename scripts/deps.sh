#!/usr/bin/env bash
# Installs the Debian packages keyfleet's tests need, when run as root and
# one is missing. As another user it lists what is missing and carries on.
set -euo pipefail

packages=(
  ca-certificates   # TLS roots for the Go module proxy
  openssl           # key generation examples in the docs and tests
  gcc libc6-dev     # cgo for the workstation agent
  pcscd libpcsclite-dev pkg-config   # PC/SC daemon and headers (piv-go)
  vsmartcard-vpcd   # the virtual reader keyfleet-vkey plugs into
  pcsc-tools        # pcsc_scan, for looking at the virtual card by hand
  yubico-piv-tool opensc   # second and third PIV clients in the vkey end-to-end tests
  yubikey-manager   # ykman: Yubico's own client, in the vkey end-to-end tests
  python3-fido2     # CTAP2 over PC/SC: a real client for the vkey's FIDO2 applet
  libfido2-dev      # go-libfido2 (cgo), the agent's FIDO2 adapter for real keys
  chromium          # browser tests of the web pages (daemon/web), with its virtual WebAuthn key
  freeradius-utils  # radclient and radtest: FreeRADIUS's clients in the RADIUS listener's tests
  freeradius        # a real FreeRADIUS proxying to keyfleet in the RADIUS listener's tests
  slapd             # a private OpenLDAP for the RADIUS listener's password-then-code tests
  libpam0g-dev      # PAM's headers, to build pam_keyfleet.so
  pamtester         # drives pam_keyfleet.so through Linux-PAM in its tests
  openssh-server    # sshd on a loopback port: keyboard-interactive through pam_keyfleet.so
  openssh-client    # ssh and ssh-keygen, answering sshd's prompt in the PAM tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]} (run 'make test' as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
