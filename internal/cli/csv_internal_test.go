package cli

import (
	"strings"
	"testing"
)

// Every command that takes -o csv exists, so a renamed command cannot
// silently lose its CSV.
func TestEveryCSVCommandExists(t *testing.T) {
	root := (&app{env: func(string) string { return "" }}).rootCmd()
	for path := range csvCommands {
		cmd, rest, err := root.Find(strings.Fields(path))
		if err != nil || len(rest) != 0 || cmd.CommandPath() != "keyfleet "+path {
			t.Errorf("csvCommands names %q, which is not a command (found %q)", path, cmd.CommandPath())
		}
	}
}
