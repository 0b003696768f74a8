package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Set at link time (scripts/ldflags.sh). override replaces the module
// version. The stamp values stand in for the go command's VCS stamp where
// it wrote none (a git worktree, a build without git); its own wins.
var (
	override                                string
	stampRevision, stampTime, stampModified string
)

// Info describes one build.
type Info struct {
	// Version is the main module's version: a tag (v1.2.3), a
	// pseudo-version for an untagged commit (v0.0.0-20261206224757-7b7c7e983f0a,
	// "+dirty" when the tree had changes), or "(devel)".
	Version string `json:"version"`
	// Revision is the commit the binary was built from; empty without a
	// VCS stamp.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time; zero without a VCS stamp.
	Time time.Time `json:"time,omitzero"`
	// Modified says the working tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns the running binary's build information.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	return fromBuildInfo(bi, linkStamp{override: override, revision: stampRevision, time: stampTime, modified: stampModified})
}

// linkStamp is what the linker was told (-X); all strings, as -X sets.
type linkStamp struct{ override, revision, time, modified string }

func fromBuildInfo(bi *debug.BuildInfo, ls linkStamp) Info {
	i := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	rev, when, modified := ls.revision, ls.time, ls.modified
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	i.Revision, i.Modified = rev, modified == "true"
	i.Time, _ = time.Parse(time.RFC3339, when)
	switch {
	case ls.override != "":
		i.Version = ls.override
	case (i.Version == "" || i.Version == "(devel)") && i.Revision != "" && !i.Time.IsZero():
		i.Version = pseudoVersion(i)
	case i.Version == "":
		i.Version = "(devel)"
	}
	return i
}

// pseudoVersion names an untagged commit as the go command does:
// v0.0.0-YYYYMMDDHHMMSS-REVISION12, "+dirty" for a modified tree.
func pseudoVersion(i Info) string {
	v := "v0.0.0-" + i.Time.UTC().Format("20060102150405") + "-" + i.ShortRevision()
	if i.Modified {
		v += "+dirty"
	}
	return v
}

// ShortRevision is the first 12 characters of the commit, or "".
func (i Info) ShortRevision() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}

// String is the one line --version prints (without the program name):
// "v0.0.0-…-7b7c7e983f0a (commit 7b7c7e983f0a, 2026-12-06T22:47:57Z, modified; go1.26.8)".
func (i Info) String() string {
	var parts []string
	if i.Revision != "" {
		c := "commit " + i.ShortRevision()
		if !i.Time.IsZero() {
			c += ", " + i.Time.UTC().Format(time.RFC3339)
		}
		if i.Modified {
			c += ", modified"
		}
		parts = append(parts, c)
	}
	parts = append(parts, i.GoVersion)
	return fmt.Sprintf("%s (%s)", i.Version, strings.Join(parts, "; "))
}
