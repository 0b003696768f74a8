package deploy_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	"github.com/keyfleet/keyfleet/attest/attesttest"
	"github.com/keyfleet/keyfleet/daemon"
	dt "github.com/keyfleet/keyfleet/daemon/directory/directorytest"
)

const (
	rulesFile     = "prometheus/keyfleet-alerts.yml"
	rulesTestFile = "prometheus/keyfleet-alerts.test.yml"
	dashboardFile = "grafana/keyfleet.json"
)

func promtool(t *testing.T, stdin io.Reader, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: apt-get install prometheus (scripts/deps.sh does)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRulesPassPromtool: Prometheus's own checker accepts the rules
// and their unit tests pass.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool(t, nil, "check", "rules", rulesFile)
	promtool(t, nil, "test", "rules", rulesTestFile)
}

// faultSeries are the fault states operators alert on
// (docs/operations.md, "Faults"): the store's space, a read-only store,
// and the audit checkpoints.
var faultSeries = []string{
	"keyfleet_store_storage_full", "keyfleet_store_free_bytes", "keyfleet_store_reserve_bytes", "keyfleet_store_read_only",
	"keyfleet_audit_checkpoint_mismatch", "keyfleet_audit_checkpoint_errors_total",
	"keyfleet_audit_checkpoint_timestamp_seconds", "keyfleet_audit_checkpoint_seq",
}

// TestEveryFaultSeriesHasAnAlertAndAPanel: each fault series is in an
// alert rule and on the dashboard. (TestRulesAndDashboardMatchARecordedKeyfleetd
// checks that keyfleetd publishes them under these names and labels.)
func TestEveryFaultSeriesHasAnAlertAndAPanel(t *testing.T) {
	named := func(exprs []string) map[string]bool {
		out := map[string]bool{}
		for _, e := range exprs {
			for _, m := range metricRef.FindAllStringSubmatch(e, -1) {
				out[m[1]] = true
			}
		}
		return out
	}
	rules, dashboard := named(ruleExprs(t)), named(dashboardExprs(t))
	for _, m := range faultSeries {
		if !rules[m] {
			t.Errorf("no alert rule in %s uses %s", rulesFile, m)
		}
		if !dashboard[m] {
			t.Errorf("no panel of %s shows %s", dashboardFile, m)
		}
	}
}

// TestRulesAndDashboardMatchARecordedKeyfleetd records the metrics of a
// real keyfleetd (an event sink, the TOTP plugin, an extra attestation
// root and an LDAP directory on a private slapd configured, a few
// requests made) and checks against them: the
// scrape passes promtool check metrics; every query of the rules and the
// dashboard parses and names only metrics and labels keyfleetd publishes;
// and the rules, run by promtool over the recorded series, fire nothing
// for this healthy keyfleetd.
func TestRulesAndDashboardMatchARecordedKeyfleetd(t *testing.T) {
	scrape := recordScrape(t)
	promtool(t, strings.NewReader(scrape), "check", "metrics")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(scrape))
	if err != nil {
		t.Fatal(err)
	}
	exprs := append(ruleExprs(t), dashboardExprs(t)...)
	checkQueriesParse(t, exprs)
	for _, e := range exprs {
		checkNames(t, e, families)
	}
	alerts := alertNames(t)
	runRecorded(t, families, alerts)
}

// recordScrape serves a keyfleetd on loopback and returns its /metrics.
func recordScrape(t *testing.T) string {
	t.Helper()
	work := t.TempDir()
	dir := filepath.Join(work, "data")
	res, err := daemon.Init(context.Background(), daemon.InitOptions{Dir: dir, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	plugins, sum := buildPlugin(t)
	root := filepath.Join(work, "root.pem")
	os.WriteFile(root, attesttest.NewCA(t).RootPEM(), 0o644)
	ldap := dt.Start(t, dt.Person{UID: "dora", Name: "Dora D", Mail: "dora@example.org"}.LDIF())
	cfg := fmt.Sprintf("attestation:\n  piv_roots: [%s]\nevents:\n  sinks:\n    - {name: archive, type: file, file: {path: %s}}\nplugins:\n  dir: %s\n  plugins:\n    - {name: keyfleet-plugin-totp, sha256: %s}\n",
		root, filepath.Join(work, "events.jsonl"), plugins, sum) +
		fmt.Sprintf("directory:\n  ldap:\n    name: corp\n    url: %s\n    start_tls: true\n    ca_file: %s\n    bind_dn: %s\n    bind_password_file: %s\n    user_base: %s\n    group_base: %s\n",
			ldap.URL, ldap.CAFile, dt.ReaderDN, ldap.PasswordFile, dt.People, dt.Groups)
	os.WriteFile(daemon.ConfigPath(dir), []byte(cfg), 0o600)
	var c daemon.Config
	if err := c.LoadFile(daemon.ConfigPath(dir)); err != nil {
		t.Fatal(err)
	}
	c.DataDir = dir
	srv, err := daemon.New(c, daemon.Options{LogOut: io.Discard, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "https://" + ln.Addr().String()
	ca, _ := os.ReadFile(res.TLSCert)
	tok, _ := os.ReadFile(res.AdminTokenFile)
	admin, err := client.New(client.Config{Server: base, Token: strings.TrimSpace(string(tok)), CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	// A little traffic: request, audit and event sink series.
	admin.CreateUser(ctx, api.CreateUser{Username: "recorded"})
	admin.ListUsers(ctx, client.UserFilter{})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var text string
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			text = string(b)
			if strings.Contains(text, "keyfleet_audit_chain_broken 0") && strings.Contains(text, `keyfleet_events_lag{sink="archive",type="file"} 0`+"\n") &&
				strings.Contains(text, `keyfleet_audit_events_total{action="user.create"} 2`) && // recorded and dora, from the directory
				strings.Contains(text, `keyfleet_directory_last_sync_failed{source="corp"} 0`) {
				return text
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scrape never showed the chain check, the sink's deliveries and a directory sync:\n%s", text)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

func buildPlugin(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "keyfleet-plugin-totp")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/keyfleet-plugin-totp").CombinedOutput(); err != nil {
		t.Fatalf("building the TOTP plugin: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(bin)
	s := sha256.Sum256(b)
	return dir, hex.EncodeToString(s[:])
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

func ruleExprs(t *testing.T) []string {
	var out []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

func alertNames(t *testing.T) []string {
	var out []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, r.Alert)
		}
	}
	return out
}

// dashboardExprs are the dashboard's queries with Grafana's variables
// given values, so that they are plain PromQL.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardFile, err)
	}
	r := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, r.Replace(tg.Expr))
		}
	}
	for _, v := range d.Templating.List {
		if m := regexp.MustCompile(`^label_values\((.*), *\w+\)$`).FindStringSubmatch(v.Definition); m != nil {
			out = append(out, m[1])
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries in the dashboard", len(out))
	}
	return out
}

// checkQueriesParse has promtool parse every query, as recording rules.
func checkQueriesParse(t *testing.T, exprs []string) {
	t.Helper()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rs []rule
	for i, e := range exprs {
		rs = append(rs, rule{fmt.Sprintf("keyfleet_query_%d", i), e})
	}
	b, _ := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "queries", "rules": rs}}})
	path := filepath.Join(t.TempDir(), "queries.yml")
	os.WriteFile(path, b, 0o600)
	promtool(t, nil, "check", "rules", path)
}

var (
	metricRef = regexp.MustCompile(`\b(keyfleet_[a-z0-9_]+)(\{([^}]*)\})?`)
	labelRef  = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)`)
	byRef     = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// checkNames fails on a metric or label name in expr that the recorded
// keyfleetd does not publish.
// postgresOnly are series keyfleetd publishes with the PostgreSQL backend
// only, which the recorded (Badger) keyfleetd lacks; the failover tests
// (integration/failover) read them from real keyfleetd on PostgreSQL.
var postgresOnly = map[string]bool{"keyfleet_cluster_leader": true}

func checkNames(t *testing.T, expr string, families map[string]*dto.MetricFamily) {
	t.Helper()
	labels := map[string]bool{"job": true, "instance": true, "le": true}
	for _, m := range metricRef.FindAllStringSubmatch(expr, -1) {
		f := family(families, m[1])
		if f == nil && postgresOnly[m[1]] {
			continue
		}
		if f == nil {
			t.Errorf("%q uses %s, which keyfleetd does not publish", expr, m[1])
			continue
		}
		own := map[string]bool{"job": true, "instance": true, "le": true}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				own[l.GetName()], labels[l.GetName()] = true, true
			}
		}
		for _, l := range labelRef.FindAllStringSubmatch(m[3], -1) {
			if !own[l[1]] {
				t.Errorf("%q matches %s on label %q, which it does not have", expr, m[1], l[1])
			}
		}
	}
	for _, b := range byRef.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(b[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !labels[l] {
				t.Errorf("%q groups by %q, which none of its metrics has", expr, l)
			}
		}
	}
}

// family finds a metric's family; histogram series have suffixes.
func family(families map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f, ok := families[name]; ok {
		return f
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := families[strings.TrimSuffix(name, suf)]; ok && strings.HasSuffix(name, suf) {
			return f
		}
	}
	return nil
}

// runRecorded has promtool evaluate every rule for half an hour over the
// recorded series held steady: a healthy keyfleetd fires no alert.
func runRecorded(t *testing.T, families map[string]*dto.MetricFamily, alerts []string) {
	t.Helper()
	series := recordedSeries(families)
	if len(series) < 50 {
		t.Fatalf("only %d recorded series", len(series))
	}
	type input struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	var in []input
	for _, s := range series {
		in = append(in, input{s.name, s.value + "x40"})
	}
	var tests []map[string]any
	for _, a := range alerts {
		tests = append(tests, map[string]any{"eval_time": "30m", "alertname": a, "exp_alerts": []any{}})
	}
	abs, _ := filepath.Abs(rulesFile)
	doc := map[string]any{
		"rule_files":          []string{abs},
		"evaluation_interval": "1m",
		"tests":               []any{map[string]any{"name": "a healthy keyfleetd, as recorded", "interval": "1m", "input_series": in, "alert_rule_test": tests}},
	}
	b, _ := yaml.Marshal(doc)
	path := filepath.Join(t.TempDir(), "recorded.test.yml")
	os.WriteFile(path, b, 0o600)
	promtool(t, nil, "test", "rules", path)
}

type sample struct{ name, value string }

// recordedSeries turns a scrape into promtool input series, as Prometheus
// would store it with job and instance labels (histograms as their
// _bucket, _sum and _count series), plus up.
func recordedSeries(families map[string]*dto.MetricFamily) []sample {
	out := []sample{{`up{job="keyfleet",instance="recorded:8443"}`, "1"}}
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, m := range families[n].GetMetric() {
			labels := []string{`job="keyfleet"`, `instance="recorded:8443"`}
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			sel := func(name string, extra ...string) string {
				return name + "{" + strings.Join(append(append([]string{}, labels...), extra...), ",") + "}"
			}
			num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
			switch {
			case m.Histogram != nil:
				for _, b := range m.Histogram.GetBucket() {
					out = append(out, sample{sel(n+"_bucket", `le="`+num(b.GetUpperBound())+`"`), num(float64(b.GetCumulativeCount()))})
				}
				out = append(out, sample{sel(n+"_bucket", `le="+Inf"`), num(float64(m.Histogram.GetSampleCount()))},
					sample{sel(n + "_sum"), num(m.Histogram.GetSampleSum())}, sample{sel(n + "_count"), num(float64(m.Histogram.GetSampleCount()))})
			case m.Summary != nil:
				out = append(out, sample{sel(n + "_sum"), num(m.Summary.GetSampleSum())}, sample{sel(n + "_count"), num(float64(m.Summary.GetSampleCount()))})
			case m.Counter != nil:
				out = append(out, sample{sel(n), num(m.Counter.GetValue())})
			case m.Gauge != nil:
				out = append(out, sample{sel(n), num(m.Gauge.GetValue())})
			case m.Untyped != nil:
				out = append(out, sample{sel(n), num(m.Untyped.GetValue())})
			}
		}
	}
	return out
}
