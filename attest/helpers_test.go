package attest

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// vectorTime is the date the shared vectors were collected and checked.
var vectorTime = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

const testdata = "../testdata/attest"

func readVector(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func certVector(tb testing.TB, rel string) *x509.Certificate {
	tb.Helper()
	c, err := ParseCertificate(readVector(tb, rel))
	if err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
	return c
}
