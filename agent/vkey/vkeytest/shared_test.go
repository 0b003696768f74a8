package vkeytest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a test that records whether it failed or skipped.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatal(args ...any)         { r.failed = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...) }
func (r *recorder) Skip(args ...any)          { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Skipf(f string, a ...any)  { r.skipped = fmt.Sprintf(f, a...) }
func (r *recorder) SkipNow()                  { r.skipped = "SkipNow" }

// TestAMissingPCSCDFailsTheTestNamingThePackages: a test that needs PC/SC
// on a machine without pcscd fails, saying what to install; it does not
// skip.
func TestAMissingPCSCDFailsTheTestNamingThePackages(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"pcscd or vpcd not installed", ErrNotInstalled, []string{"apt-get install pcscd vsmartcard-vpcd", "scripts/deps.sh"}},
		{"another pcscd owns the socket", ErrBusy, []string{"another pcscd", "stop it"}},
		{"pcscd exits at start", fmt.Errorf("pcscd exited at start: exit status 1"), []string{"pcscd and vsmartcard-vpcd", "exited at start"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			if p := (&Shared{Err: tt.err}).Need(r); p != nil {
				t.Fatalf("Need returned a pcscd that did not start: %v", p)
			}
			if r.skipped != "" || r.failed == "" {
				t.Fatalf("failed %q, skipped %q: want a failure", r.failed, r.skipped)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.failed, w) {
					t.Errorf("the failure %q does not say %q", r.failed, w)
				}
			}
		})
	}
}
