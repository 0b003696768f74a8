package daemon

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestTheDefaultConfigFileHasEverySetting: init writes every setting, and
// each at its default: loading the file changes nothing. A setting added
// to Config without a line in defaultConfigFile fails here.
func TestTheDefaultConfigFileHasEverySetting(t *testing.T) {
	text := DefaultConfigFile("/srv/keyfleet")
	path := filepath.Join(t.TempDir(), "keyfleetd.yaml")
	os.WriteFile(path, []byte(text), 0o600)
	var fromFile Config
	if err := fromFile.LoadFile(path); err != nil {
		t.Fatalf("the default file does not load: %v", err)
	}
	fromNothing := Config{DataDir: "/srv/keyfleet"}
	for _, c := range []*Config{&fromFile, &fromNothing} {
		c.Defaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := c.Events.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := yaml.Marshal(fromFile)
	b, _ := yaml.Marshal(fromNothing)
	if string(a) != string(b) {
		t.Fatalf("a value in the default file is not the default:\nfile:\n%s\nno file:\n%s", a, b)
	}

	lines, errs := checkStructure(path, []byte(text))
	if errs != nil {
		t.Fatal(errs)
	}
	for _, p := range settingPaths(reflect.TypeOf(Config{}), "") {
		if strings.Contains(p, "[]") {
			// A list element's settings are shown in a commented example.
			name := p[strings.LastIndex(p, ".")+1:]
			if !regexp.MustCompile(`(?m)^\s*#.*\b` + name + `:`).MatchString(text) {
				t.Errorf("%s is in no commented example of defaultConfigFile (daemon/configfile.go)", p)
			}
			continue
		}
		if lines[p] == 0 {
			t.Errorf("%s is missing from defaultConfigFile (daemon/configfile.go): add it with its default and a comment", p)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") && !strings.HasPrefix(k, "-") &&
			!strings.Contains(line, "#") && !strings.HasSuffix(strings.TrimSpace(line), ":") {
			t.Errorf("the setting %q has no comment", k)
		}
	}
}

// settingPaths lists every setting's path; a list's element settings are
// under "name[]".
func settingPaths(t reflect.Type, prefix string) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for name, ft := range settingFields(t) {
		p := joinKey(prefix, name)
		out = append(out, p)
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Name() == "Duration", scalarStruct(ft):
		case ft.Kind() == reflect.Struct:
			out = append(out, settingPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && !scalarStruct(ft.Elem()) && (ft.Elem().Kind() == reflect.Struct || ft.Elem().Kind() == reflect.Pointer):
			out = append(out, settingPaths(ft.Elem(), p+"[]")...)
		}
	}
	return out
}

func TestInitWritesTheDefaultsOrKeepsAPackagedFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(dir, 0o700)
	got, err := writeInitConfig(InitOptions{Dir: dir})
	if err != nil || got != ConfigPath(dir) {
		t.Fatalf("%s %v", got, err)
	}
	if b, _ := os.ReadFile(got); string(b) != DefaultConfigFile("") {
		t.Fatal("init did not write the default file beside the data")
	}
	packaged := filepath.Join(t.TempDir(), "keyfleetd.yaml")
	os.WriteFile(packaged, []byte("listen: 127.0.0.1:9443\n"), 0o640)
	if got, err := writeInitConfig(InitOptions{Dir: dir, ConfigFile: packaged}); err != nil || got != packaged {
		t.Fatalf("%s %v", got, err)
	}
	if b, _ := os.ReadFile(packaged); string(b) != "listen: 127.0.0.1:9443\n" {
		t.Fatalf("init overwrote the packaged file: %s", b)
	}
	elsewhere := filepath.Join(t.TempDir(), "etc.yaml")
	writeInitConfig(InitOptions{Dir: dir, ConfigFile: elsewhere})
	if b, _ := os.ReadFile(elsewhere); !strings.Contains(string(b), "data: \""+dir+"\"") {
		t.Fatalf("a config file away from the data folder does not name it:\n%.400s", b)
	}
}

// TestAPackagedCheckpointFileIsWhereInitAndServeLookAndNeverInTheData:
// the packaged configuration (keyfleetd default-config --checkpoint-file)
// names a folder of its own; init writes the first checkpoint there, as
// serve reads it, and not beside the data folder, where the service may
// not write.
func TestAPackagedCheckpointFileIsWhereInitAndServeLookAndNeverInTheData(t *testing.T) {
	work := t.TempDir()
	dir, anchor := filepath.Join(work, "keyfleet"), filepath.Join(work, "keyfleet-anchor", "audit.checkpoint")
	os.MkdirAll(filepath.Dir(anchor), 0o700)
	text, err := WithCheckpointFile(DefaultConfigFile(dir), dir, anchor)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(work, "keyfleetd.yaml")
	os.WriteFile(conf, []byte(text), 0o640)
	c := Config{}
	if err := c.LoadFile(conf); err != nil || c.Audit.Checkpoint.File != anchor {
		t.Fatalf("the packaged file's audit.checkpoint.file is %q (%v), want %s", c.Audit.Checkpoint.File, err, anchor)
	}
	res, err := Init(context.Background(), InitOptions{Dir: dir, ConfigFile: conf, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if res.CheckpointFile != anchor || res.CheckpointNote != "" {
		t.Fatalf("init's checkpoint: %q, note %q; want %s", res.CheckpointFile, res.CheckpointNote, anchor)
	}
	if _, err := os.Stat(anchor); err != nil {
		t.Fatalf("init wrote no checkpoint where the configuration says: %v", err)
	}
	if _, err := os.Stat(dir + ".checkpoint"); err == nil {
		t.Fatal("init wrote the checkpoint beside the data folder, not where the configuration says")
	}

	for name, file := range map[string]string{"relative": "anchor/audit.checkpoint", "inside the data folder": filepath.Join(dir, "audit.checkpoint")} {
		if _, err := WithCheckpointFile(DefaultConfigFile(dir), dir, file); err == nil {
			t.Errorf("a checkpoint file %s (%s) was accepted", name, file)
		}
	}
	inside := filepath.Join(work, "inside.yaml")
	os.WriteFile(inside, []byte("audit:\n  checkpoint:\n    file: "+filepath.Join(work, "other", "cp")+"\n"), 0o640)
	other := filepath.Join(work, "other")
	if _, err := Init(context.Background(), InitOptions{Dir: other, ConfigFile: inside, Getenv: func(string) string { return "" }}); err == nil || !strings.Contains(err.Error(), "inside the data folder") {
		t.Fatalf("init with a checkpoint file inside its data folder: %v", err)
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatal("a refused init left its data folder behind")
	}
}
