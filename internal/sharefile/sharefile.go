// Package sharefile writes and reads break-glass share files: one share
// per file, mode 0600, with a comment saying what it is. keyfleetd init
// and the keyfleet CLI (share, use) share it.
package sharefile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Write writes each share to its own file in dir (0700) and returns the
// file names.
func Write(dir, setID string, threshold int, shares []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var files []string
	for i, sh := range shares {
		name := filepath.Join(dir, fmt.Sprintf("share-%d-of-%d.txt", i+1, len(shares)))
		text := fmt.Sprintf("# keyfleet break-glass share %d of %d (set %s; any %d open one emergency admin session).\n"+
			"# Give it to one holder, keep it offline, and delete this file.\n%s\n", i+1, len(shares), setID, threshold, sh)
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

// WriteOne writes one holder's share to a new file (mode 0600), which
// must not exist yet: a share is never written over another file.
func WriteOne(path, setID string, threshold int, share string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("# keyfleet break-glass share (set %s; any %d open one emergency admin session).\n"+
		"# Yours alone: keep it offline, apart from the other holders' shares.\n%s\n", setID, threshold, share)
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// Read returns the share in a file: its last line that is not a comment.
func Read(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var share string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			share = line
		}
	}
	if share == "" {
		return "", fmt.Errorf("%s holds no share", file)
	}
	return share, nil
}
