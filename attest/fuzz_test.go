package attest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// assertTypedError fails unless err is nil or an *Error with a reason: every
// rejection of untrusted bytes must say why, never panic.
func assertTypedError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if err != nil && (!errors.As(err, &e) || e.Reason == nil || e.Detail == "") {
		t.Fatalf("error %v is not an *Error with a reason and detail", err)
	}
}

func seedFiles(f *testing.F, pattern string) [][]byte {
	files, _ := filepath.Glob(filepath.Join(testdata, pattern))
	var out [][]byte
	for _, name := range files {
		out = append(out, readVector(f, strings.TrimPrefix(name, testdata+"/")))
	}
	return out
}

func FuzzParseCertificates(f *testing.F) {
	for _, b := range seedFiles(f, "piv/*.pem") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseCertificates(data)
		assertTypedError(t, err)
	})
}

func FuzzPIVExtensions(f *testing.F) {
	f.Add([]byte{5, 7, 4}, []byte{0x02, 0x04, 0x01, 0xf3, 0x3e, 0x8d}, []byte{3, 1}, []byte{0x83})
	f.Add([]byte{4, 3}, []byte{0x02, 0x01, 0xff}, []byte{9, 9, 9}, []byte{})
	f.Fuzz(func(t *testing.T, fw, serial, policy, ff []byte) {
		_, err := parsePIVExtensions(pivExts(fw, serial, policy, ff))
		assertTypedError(t, err)
	})
}

func FuzzVerifyPIVCSR(f *testing.F) {
	for _, b := range seedFiles(f, "piv/tamemycerts/*.csr.pem") {
		der, err := ParseCSR(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		_, err := VerifyPIVCSR(der, PIVOptions{Time: vectorTime})
		assertTypedError(t, err)
	})
}

func FuzzVerifyFIDO2(f *testing.F) {
	for _, b := range seedFiles(f, "webauthn/*/*.json") {
		if reg, err := ParseRegistrationJSON(b); err == nil {
			f.Add(reg.AttestationObject, reg.ClientDataJSON)
		}
	}
	exp := FIDO2Expectation{Challenge: []byte("challenge"), Origins: []string{"http://localhost:5000"}, RPID: "localhost", Time: vectorTime}
	f.Fuzz(func(t *testing.T, attObj, clientData []byte) {
		_, err := VerifyFIDO2(attObj, clientData, exp)
		assertTypedError(t, err)
		// The same bytes with the client data checks satisfied reach the
		// CBOR and statement parsers.
		_, err = verifyAttestationObjectOnly(attObj, exp.RPID)
		assertTypedError(t, err)
	})
}

// verifyAttestationObjectOnly runs the attestation object half of
// VerifyFIDO2 so the fuzzer is not stopped by the client data checks.
func verifyAttestationObjectOnly(attObj []byte, rpID string) (*Evidence, error) {
	att, err := parseAttestationObject(attObj)
	if err != nil {
		return nil, err
	}
	key, err := checkAuthData(&att.AuthData, FIDO2Expectation{RPID: rpID})
	if err != nil {
		return nil, err
	}
	typ, x5c, err := verifyStatement(att, make([]byte, 32), key, vectorTime)
	if err != nil {
		return nil, err
	}
	ev, err := fido2Evidence(att, typ, key)
	if err == nil && len(x5c) > 0 {
		_, err = verifyFIDOChain(x5c, FIDO2Expectation{Time: time.Unix(1700000000, 0)})
	}
	return ev, err
}

func FuzzParseRegistrationJSON(f *testing.F) {
	for _, b := range seedFiles(f, "webauthn/*/*.json") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseRegistrationJSON(data)
		assertTypedError(t, err)
	})
}

func FuzzParseU2FCertificate(f *testing.F) {
	for _, b := range seedFiles(f, "webauthn/roots/*.pem") {
		if c, err := ParseCertificate(b); err == nil {
			f.Add(c.Raw)
		}
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := parseU2FCertificate(der)
		if err == nil && c == nil {
			t.Fatal("no certificate and no error")
		}
	})
}
