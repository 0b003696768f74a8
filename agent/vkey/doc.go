// Package vkey is a virtual YubiKey 5: a pure-Go smart card that plugs
// into the real PC/SC stack through vpcd (vsmartcard's reader driver) and
// answers standard PIV tooling (piv-go, yubico-piv-tool, OpenSC, ykman) the
// way a YubiKey 5 does.
//
// A [Card] is the card itself: it takes command APDUs and returns response
// APDUs (ISO/IEC 7816-4 short and extended forms, command chaining, GET
// RESPONSE). It carries up to four applets:
//
//   - PIV (NIST SP 800-73-4 part 2, with Yubico's extensions): PIN and PUK,
//     the 3DES or AES management key, key generation (EC P-256, P-384,
//     RSA 2048) with PIN and touch policies, import, signing, ECDH,
//     attestation (INS F9), GET/PUT DATA, metadata (INS F7), retries and
//     reset.
//   - Management (AID A000000527471117): version, and the device
//     configuration (INS 1D) with serial, form factor and capabilities.
//   - OTP (AID A0000005272001), only for the serial of firmware below 5.
//   - FIDO2 (AID A0000006472F0001, CTAP 2.1 §11.3), when Options.FIDO2 is
//     set: SELECT answers "FIDO_2_0" and NFCCTAP_MSG (CLA 80, INS 10)
//     carries a CTAP2 request (command byte and CBOR) to the authenticator
//     (agent/fido2's software one: CTAP 2.1 with credential management,
//     hmac-secret, getNextAssertion, reset) and its response back. The
//     card tells the authenticator when it is plugged in (PowerUp: the
//     reset window opens, a PIN block ends) and when the reader power
//     cycles it (PowerCycle: the PIN token goes).
//
// PIV status words are a YubiKey 5's (6A80 for data the card refuses, an
// algorithm that is not the slot key's included; 6A82 for an object that
// is not there), which Yubico's tools branch on.
//
// Selecting an applet starts a new security session, as on a YubiKey: the
// verified PIN (PIN policy "once") and the management key authentication
// last until the next SELECT, reset or power-off.
//
// Attestation is signed by the card's own attestation CA ([CA]), never by
// Yubico: a verifier trusts it only when configured to. The certificates
// carry Yubico's extensions (1.3.6.1.4.1.41482.3.*) with the card's real
// firmware, serial, policies and form factor.
//
// [Serve] connects a Card to vpcd: the card is the TCP client, every frame
// is a 2-byte big-endian length and a payload, and a one-byte payload is a
// control byte (power off, power on, reset, get ATR).
//
// State (keys, PINs, objects) is held in a [State] that a [Store] persists
// after every change; [FileStore] writes it atomically with mode 0600.
// The file holds the card's secrets in the clear: it is a test and demo
// device, not a secure element.
package vkey
