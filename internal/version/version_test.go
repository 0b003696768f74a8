package version

import (
	"runtime/debug"
	"testing"
	"time"
)

func TestBuildInfoReadsAsAVersion(t *testing.T) {
	vcs := func(rev, when, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "7b7c7e983f0a1dbbbb80355f7fd233b8dd0f0573"
	tests := []struct {
		name      string
		main      string
		settings  []debug.BuildSetting
		link      linkStamp
		want      string
		wantRev   string
		wantDirty bool
	}{
		{name: "a tagged build keeps its tag", main: "v1.4.0", settings: vcs(rev, "2026-12-06T22:47:57Z", "false"),
			want: "v1.4.0 (commit 7b7c7e983f0a, 2026-12-06T22:47:57Z; go1.26.8)", wantRev: rev},
		{name: "the go command's pseudo-version of a modified tree", main: "v0.0.0-20261206224757-7b7c7e983f0a+dirty", settings: vcs(rev, "2026-12-06T22:47:57Z", "true"),
			want: "v0.0.0-20261206224757-7b7c7e983f0a+dirty (commit 7b7c7e983f0a, 2026-12-06T22:47:57Z, modified; go1.26.8)", wantRev: rev, wantDirty: true},
		{name: "no VCS stamp at all reads devel", main: "(devel)",
			want: "(devel) (go1.26.8)"},
		{name: "a worktree build takes make's stamp and names the commit as go would", main: "(devel)",
			link: linkStamp{revision: rev, time: "2026-12-06T22:47:57Z", modified: "false"},
			want: "v0.0.0-20261206224757-7b7c7e983f0a (commit 7b7c7e983f0a, 2026-12-06T22:47:57Z; go1.26.8)", wantRev: rev},
		{name: "the go command's stamp wins over make's", main: "v0.0.0-20261206224757-7b7c7e983f0a", settings: vcs(rev, "2026-12-06T22:47:57Z", "false"),
			link: linkStamp{revision: "0000000000000000000000000000000000000000", time: "2020-01-01T00:00:00Z", modified: "true"},
			want: "v0.0.0-20261206224757-7b7c7e983f0a (commit 7b7c7e983f0a, 2026-12-06T22:47:57Z; go1.26.8)", wantRev: rev},
		{name: "a packager's VERSION replaces the version only", main: "(devel)", link: linkStamp{override: "v2.0.0", revision: rev, time: "2026-12-06T22:47:57Z", modified: "false"},
			want: "v2.0.0 (commit 7b7c7e983f0a, 2026-12-06T22:47:57Z; go1.26.8)", wantRev: rev},
		{name: "an empty main version reads devel", main: "", want: "(devel) (go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := fromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: tt.main}, Settings: tt.settings}, tt.link)
			if got := i.String(); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if i.Revision != tt.wantRev || i.Modified != tt.wantDirty {
				t.Fatalf("revision %q modified %v", i.Revision, i.Modified)
			}
			if tt.wantRev != "" && !i.Time.Equal(time.Date(2026, 12, 6, 22, 47, 57, 0, time.UTC)) {
				t.Fatalf("time %v", i.Time)
			}
		})
	}
}
