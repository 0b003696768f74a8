package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCAExportWritesTheRootAndKeepsIt(t *testing.T) {
	dir := t.TempDir()
	caPath := filepath.Join(dir, "ca.pem")
	var out1, out2, errb bytes.Buffer
	if code := run(context.Background(), []string{"ca", "export", "--ca", caPath}, &out1, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	run(context.Background(), []string{"ca", "export", "--ca", caPath}, &out2, &errb)
	blk, _ := pem.Decode(out1.Bytes())
	if blk == nil || !bytes.Equal(out1.Bytes(), out2.Bytes()) {
		t.Fatal("the exported root is not stable PEM")
	}
	if c, err := x509.ParseCertificate(blk.Bytes); err != nil || !c.IsCA {
		t.Fatalf("root: %v", err)
	}
	if fi, _ := os.Stat(caPath); fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA file mode %v", fi.Mode())
	}
	if strings.Contains(out1.String(), "PRIVATE KEY") {
		t.Fatal("the export leaks the CA key")
	}
}

func TestCAExportFIDO2WritesTheFIDO2Root(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"ca", "export", "--fido2", "--fido2-ca", filepath.Join(dir, "fido2-ca.pem"), "--ca", filepath.Join(dir, "ca.pem")}
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	blk, _ := pem.Decode(out.Bytes())
	if blk == nil || strings.Contains(out.String(), "PRIVATE KEY") {
		t.Fatalf("export %q", out.String())
	}
	if c, err := x509.ParseCertificate(blk.Bytes); err != nil || !strings.Contains(c.Subject.CommonName, "FIDO") {
		t.Fatalf("root %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
		t.Fatal("exporting the FIDO2 root made a PIV CA")
	}
}

func TestServeRejectsBadFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
	}{
		{"a firmware that is not a version", []string{"--firmware", "five"}},
		{"an unknown form factor", []string{"--form-factor", "usb-z"}},
		{"an unknown touch mode", []string{"--touch", "maybe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb bytes.Buffer
			args := append([]string{"serve", "--state", filepath.Join(dir, "s.json"), "--ca", filepath.Join(dir, "ca.pem")}, tt.args...)
			if code := run(context.Background(), args, &errb, &errb); code != 1 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
		})
	}
}

func TestServeCreatesStateAndStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	fido2State := filepath.Join(dir, "fido2.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errb bytes.Buffer
	state := filepath.Join(dir, "card.json")
	go func() {
		done <- run(ctx, []string{"serve", "--vpcd", "127.0.0.1:1", "--state", state, "--ca", filepath.Join(dir, "ca.pem"), "--serial", "1234567",
			"--fido2-state", fido2State, "--fido2-ca", filepath.Join(dir, "fido2-ca.pem")}, &errb, &errb)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(state)
		fi2, err2 := os.Stat(fido2State)
		if err == nil && err2 == nil && fi.Mode().Perm() == 0o600 && fi2.Mode().Perm() == 0o600 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no state files (card and FIDO2 applet)")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
