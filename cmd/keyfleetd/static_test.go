package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPureGoBinariesBuildWithoutCgo builds the binaries that `make run`
// needs on a machine without the agent's C libraries, with cgo off, and
// checks that they are static: no program interpreter and no shared
// library, so they run on any Linux of the architecture.
func TestPureGoBinariesBuildWithoutCgo(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	out := t.TempDir()
	pkgs := []string{"./cmd/keyfleetd", "./cmd/keyfleet", "./cmd/keyfleet-vkey", "./cmd/keyfleet-plugin-totp"}
	cmd := exec.Command(goBin, append([]string{"build", "-trimpath", "-o", out + "/"}, pkgs...)...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build %v: %v\n%s", pkgs, err, b)
	}
	for _, p := range pkgs {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			f, err := elf.Open(filepath.Join(out, name))
			if err != nil {
				t.Fatalf("%s is not an ELF binary: %v", name, err)
			}
			defer f.Close()
			for _, prog := range f.Progs {
				if prog.Type == elf.PT_INTERP {
					t.Fatalf("%s asks for a program interpreter: it is dynamically linked", name)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Fatalf("%s needs shared libraries %v", name, libs)
			}
		})
	}
}
