package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/internal/clikit"
	"github.com/keyfleet/keyfleet/internal/loadgen"
)

// target is where keyfleetd is and which process it is.
type target struct {
	server, ca, tokenFile string
	pid                   int
	clients               int
}

func (t *target) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.server, "server", "https://127.0.0.1:8443", "keyfleetd's URL")
	f.StringVar(&t.ca, "ca", "", "its TLS certificate (DATA/tls/cert.pem)")
	f.StringVar(&t.tokenFile, "token-file", "", "a file holding an administrator's token (DATA/admin.token)")
	f.IntVar(&t.pid, "pid", 0, "keyfleetd's process id, to measure its CPU and memory (and its plugins')")
	f.IntVar(&t.clients, "clients", 16, "requests in flight at once")
}

// client is a client with the token of --token-file (none without it).
func (t *target) client() (*loadgen.Client, error) {
	var token string
	if t.tokenFile != "" {
		b, err := os.ReadFile(t.tokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	return loadgen.NewClient(loadgen.ClientConfig{Server: t.server, CAFile: t.ca, Token: token, Conns: t.clients})
}

// procs are keyfleetd and its plugins.
func (t *target) procs() ([]loadgen.Proc, error) {
	if t.pid == 0 {
		return nil, errors.New("--pid is required to measure keyfleetd")
	}
	d := loadgen.Proc{PID: t.pid}
	kids, err := d.Children()
	return append([]loadgen.Proc{d}, kids...), err
}

func run(ctx context.Context, args []string) int {
	root := &cobra.Command{
		Use:           "keyfleet-loadgen",
		Short:         "Drive a running keyfleetd and measure it (benchmarks)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.AddCommand(fixtureCmd(), warmCmd(), verifyCmd(), createUsersCmd(), importCmd(), getCmd(), readyCmd(), memCmd(), baselineCmd(), freePortCmd(), userIDCmd(), verifyAuditCmd())
	clikit.Standard(root)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "keyfleet-loadgen: %v\n", err)
		return 1
	}
	return 0
}

func fixtureCmd() *cobra.Command {
	var t target
	var out string
	var cfg loadgen.FixtureConfig
	cmd := &cobra.Command{
		Use:   "fixture --out FILE",
		Short: "Make users with TOTP factors and a service token, and save them for verify",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := t.client()
			if err != nil {
				return err
			}
			start := time.Now()
			cfg.Progress = func(done int) {
				if done%500 == 0 {
					fmt.Fprintf(os.Stderr, "  %d of %d users enrolled (%s)\n", done, cfg.Users, time.Since(start).Round(time.Second))
				}
			}
			f, err := loadgen.BuildFixture(cmd.Context(), admin, cfg)
			if err != nil {
				return err
			}
			return f.Save(out)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&out, "out", "", "fixture file to write")
	cmd.Flags().IntVar(&cfg.Users, "users", 3000, "users, each with --factors TOTP factors")
	cmd.Flags().IntVar(&cfg.FactorsPerUser, "factors", 2, "TOTP factors per user")
	cmd.Flags().StringVar(&cfg.Prefix, "prefix", "totp", "username prefix")
	cmd.MarkFlagRequired("out")
	return cmd
}

func verifyCmd() *cobra.Command {
	var t target
	var file, mode, label string
	var limit int
	cmd := &cobra.Command{
		Use:   "verify --fixture FILE --mode one-call|begin-finish",
		Short: "Verify every fresh TOTP code of a fixture and print throughput, latency, CPU and memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadgen.LoadFixture(file)
			if err != nil {
				return err
			}
			c, err := t.client()
			if err != nil {
				return err
			}
			procs, err := t.procs()
			if err != nil {
				return err
			}
			ops, err := f.Plan(cmd.Context(), mode, func(d time.Duration) {
				fmt.Fprintf(os.Stderr, "  waiting %s for fresh TOTP steps\n", d.Round(time.Second))
			})
			if err != nil {
				return err
			}
			if limit > 0 && limit < len(ops) {
				ops = ops[:limit]
			}
			setup, err := c.Connect(cmd.Context(), t.clients)
			if err != nil {
				return err
			}
			res, use, self, err := measure(procs, func() loadgen.Result { return f.Verify(cmd.Context(), c, ops, t.clients) })
			if err != nil {
				return err
			}
			if err := f.Save(file); err != nil {
				return err
			}
			base, err := loadgen.OTPBaseline(time.Second)
			if err != nil {
				return err
			}
			if label == "" {
				label = "totp " + mode
			}
			printRun(label, t.clients, res, use, self)
			fmt.Printf("  %d connections opened before the run in %s (TLS handshakes, not timed in the latencies); after the first wave of %d requests sent at once: p50 %s p99 %s\n",
				t.clients, ms(setup), t.clients, ms(res.LaterPercentile(0.5)), ms(res.LaterPercentile(0.99)))
			fmt.Printf("  pquerna/otp check, same run: %.1f µs (%s /s on one core)\n", us(base), thousands(float64(time.Second)/float64(base)))
			return runErr(res)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&file, "fixture", "", "fixture file (made by fixture; updated with the steps used)")
	cmd.Flags().StringVar(&mode, "mode", loadgen.OneCall, "one-call or begin-finish")
	cmd.Flags().StringVar(&label, "label", "", "name printed with the figures")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many verifications (0: every fresh code)")
	cmd.MarkFlagRequired("fixture")
	return cmd
}

// measure runs fn between a meter's start and stop over procs, and
// measures this process's own CPU too.
func measure(procs []loadgen.Proc, fn func() loadgen.Result) (loadgen.Result, []loadgen.Usage, time.Duration, error) {
	self := loadgen.Proc{PID: os.Getpid()}
	m, err := loadgen.StartMeter(append(procs, self)...)
	if err != nil {
		return loadgen.Result{}, nil, 0, err
	}
	res := fn()
	use, err := m.Stop()
	if err != nil {
		return res, nil, 0, err
	}
	return res, use[:len(procs)], use[len(procs)].CPU, nil
}

func runErr(res loadgen.Result) error {
	if res.Errors > 0 {
		return fmt.Errorf("%d of %d operations failed; the first: %w", res.Errors, res.Ops, res.FirstErr)
	}
	return nil
}

func printRun(label string, clients int, res loadgen.Result, use []loadgen.Usage, self time.Duration) {
	fmt.Printf("%s, %d clients: %s /s (%d in %.2fs); latency p50 %s p95 %s p99 %s; load average %s\n",
		label, clients, thousands(res.Rate()), res.Ops, res.Elapsed.Seconds(),
		ms(res.Percentile(0.5)), ms(res.Percentile(0.95)), ms(res.Percentile(0.99)), loadgen.LoadAverage())
	var parts []string
	var total time.Duration
	for i, u := range use {
		name := procName(i, len(use))
		total += u.CPU
		parts = append(parts, fmt.Sprintf("%s %.0f µs", name, us(u.CPU/time.Duration(max(res.Ops, 1)))))
	}
	fmt.Printf("  CPU per operation: %s; together %.0f µs; load generator %.0f µs\n",
		strings.Join(parts, ", "), us(total/time.Duration(max(res.Ops, 1))), us(self/time.Duration(max(res.Ops, 1))))
	parts = parts[:0]
	for i, u := range use {
		name := procName(i, len(use))
		parts = append(parts, fmt.Sprintf("%s %s (now %s)", name, mb(u.PeakRSS), mb(u.RSSAfter)))
	}
	fmt.Printf("  peak RSS during the run: %s\n", strings.Join(parts, ", "))
}

func createUsersCmd() *cobra.Command {
	var t target
	var prefix string
	var n int
	cmd := &cobra.Command{
		Use:   "create-users --n N",
		Short: "Create users one request each and print throughput, latency, CPU and memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := t.client()
			if err != nil {
				return err
			}
			procs, err := t.procs()
			if err != nil {
				return err
			}
			if prefix == "" {
				prefix = "lg" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			res, use, self, err := measure(procs, func() loadgen.Result {
				return loadgen.CreateUsers(cmd.Context(), admin, prefix, n, t.clients)
			})
			if err != nil {
				return err
			}
			printRun("POST /v1/users", t.clients, res, use, self)
			return runErr(res)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&prefix, "prefix", "", "username prefix (default: one made from the time)")
	cmd.Flags().IntVar(&n, "n", 10000, "users to create")
	return cmd
}

func importCmd() *cobra.Command {
	var t target
	var p loadgen.Population
	var from int
	cmd := &cobra.Command{
		Use:   "import --users N",
		Short: "Import a population of users with spread names, emails and groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			admin, err := t.client()
			if err != nil {
				return err
			}
			start := time.Now()
			return loadgen.ImportPopulation(cmd.Context(), admin, p, from, func(done int) {
				if done%50000 == 0 || done == p.Users {
					fmt.Fprintf(os.Stderr, "  %d of %d users imported (%s)\n", done, p.Users, time.Since(start).Round(time.Second))
				}
			})
		},
	}
	t.flags(cmd)
	cmd.Flags().IntVar(&p.Users, "users", 1_000_000, "users in the population")
	cmd.Flags().IntVar(&from, "from", 0, "first user to import (to resume)")
	cmd.Flags().StringVar(&p.Prefix, "prefix", "u", "username prefix")
	cmd.Flags().IntVar(&p.Batch, "batch", 1000, "users per import request (one transaction each)")
	return cmd
}

func getCmd() *cobra.Command {
	var t target
	var label string
	var pages int
	cmd := &cobra.Command{
		Use:   "get PATH",
		Short: "Time one GET (and the daemon's CPU for it) and print what came back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := t.client()
			if err != nil {
				return err
			}
			procs, err := t.procs()
			if err != nil {
				return err
			}
			path := args[0]
			if label == "" {
				label = "GET " + path
			}
			for i := range pages {
				var page struct {
					Items      []any  `json:"items"`
					NextCursor string `json:"next_cursor"`
				}
				res, use, _, err := measure(procs[:1], func() loadgen.Result {
					return loadgen.Run(cmd.Context(), 1, 1, func(ctx context.Context, _ int) error { return c.Do(ctx, "GET", path, nil, &page) })
				})
				if err != nil {
					return err
				}
				if err := runErr(res); err != nil {
					return err
				}
				fmt.Printf("%s (page %d): %s, keyfleetd CPU %s, %d items, more: %t; RSS %s (peak %s); load average %s\n", label, i+1,
					ms(res.Elapsed), ms(use[0].CPU), len(page.Items), page.NextCursor != "", mb(use[0].RSSAfter), mb(use[0].PeakRSS), loadgen.LoadAverage())
				if page.NextCursor == "" {
					return nil
				}
				sep := "?"
				if strings.Contains(args[0], "?") {
					sep = "&"
				}
				path = args[0] + sep + "cursor=" + url.QueryEscape(page.NextCursor)
			}
			return nil
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&label, "label", "", "name printed with the figure")
	cmd.Flags().IntVar(&pages, "pages", 1, "follow the cursor for up to this many pages")
	return cmd
}

func readyCmd() *cobra.Command {
	var t target
	var since int64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ready --since UNIX_NANOS",
		Short: "Wait until keyfleetd is ready and print how long it took since it was started",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := t.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := c.WaitReady(ctx); err != nil {
				return err
			}
			took := time.Since(time.Unix(0, since))
			line := fmt.Sprintf("start-up to ready: %s", ms(took))
			if t.pid != 0 {
				p := loadgen.Proc{PID: t.pid}
				rss, peak, err := p.Memory()
				cpu, err2 := p.CPU()
				if err == nil && err2 == nil {
					line += fmt.Sprintf("; keyfleetd CPU %s, RSS %s (peak %s)", ms(cpu), mb(rss), mb(peak))
				}
			}
			fmt.Printf("%s; load average %s\n", line, loadgen.LoadAverage())
			return nil
		},
	}
	t.flags(cmd)
	cmd.Flags().Int64Var(&since, "since", time.Now().UnixNano(), "when keyfleetd was started (date +%s%N)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after")
	return cmd
}

func memCmd() *cobra.Command {
	var t target
	var label string
	cmd := &cobra.Command{
		Use:   "mem",
		Short: "Print keyfleetd's (and its plugins') resident memory and CPU so far",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			procs, err := t.procs()
			if err != nil {
				return err
			}
			var parts []string
			for i, p := range procs {
				rss, peak, err := p.Memory()
				if err != nil {
					return err
				}
				anon, file, err := p.MemoryKinds()
				if err != nil {
					return err
				}
				cpu, _ := p.CPU()
				name := procName(i, len(procs))
				parts = append(parts, fmt.Sprintf("%s RSS %s (anonymous %s, mapped files %s; peak %s), CPU %s", name, mb(rss), mb(anon), mb(file), mb(peak), ms(cpu)))
			}
			fmt.Printf("%s: %s; load average %s\n", label, strings.Join(parts, "; "), loadgen.LoadAverage())
			return nil
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&label, "label", "memory", "name printed with the figures")
	return cmd
}

func baselineCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "otp-baseline",
		Short: "Time pquerna/otp's own TOTP check on one core",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := loadgen.OTPBaseline(2 * time.Second)
			if err != nil {
				return err
			}
			fmt.Printf("pquerna/otp check: %.1f µs (%s /s on one core)\n", us(d), thousands(float64(time.Second)/float64(d)))
			return nil
		},
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mb(b int64) string { return fmt.Sprintf("%d MB", (b+(1<<19))>>20) }

// thousands formats a rate with thousands separators.
func thousands(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func warmCmd() *cobra.Command {
	var t target
	var file string
	cmd := &cobra.Command{
		Use:   "warm --fixture FILE",
		Short: "Read every fixture user's status and factors once, as a daemon that has been running has",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadgen.LoadFixture(file)
			if err != nil {
				return err
			}
			admin, err := t.client()
			if err != nil {
				return err
			}
			res := f.Warm(cmd.Context(), admin, t.clients)
			return runErr(res)
		},
	}
	t.flags(cmd)
	cmd.Flags().StringVar(&file, "fixture", "", "fixture file")
	cmd.MarkFlagRequired("fixture")
	return cmd
}

func freePortCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "free-port",
		Short: "Print a free TCP port on 127.0.0.1",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			defer ln.Close()
			fmt.Println(ln.Addr().(*net.TCPAddr).Port)
			return nil
		},
	}
}

// procName names the i-th of n measured processes: keyfleetd, then its
// plugins.
func procName(i, n int) string {
	switch {
	case i == 0:
		return "keyfleetd"
	case n == 2:
		return "plugin"
	}
	return fmt.Sprintf("plugin #%d", i)
}

func userIDCmd() *cobra.Command {
	var t target
	cmd := &cobra.Command{
		Use:   "user-id NAME",
		Short: "Print a user's id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := t.client()
			if err != nil {
				return err
			}
			var u api.User
			if err := c.Do(cmd.Context(), "GET", "/v1/users/"+args[0], nil, &u); err != nil {
				return err
			}
			fmt.Println(u.ID)
			return nil
		},
	}
	t.flags(cmd)
	return cmd
}

func verifyAuditCmd() *cobra.Command {
	var t target
	var full bool
	cmd := &cobra.Command{
		Use:   "verify-audit [--full]",
		Short: "Time GET /v1/audit/verify and print events/s",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := t.client()
			if err != nil {
				return err
			}
			procs, err := t.procs()
			if err != nil {
				return err
			}
			var v api.AuditVerification
			path := "/v1/audit/verify"
			if full {
				path += "?full=true"
			}
			res, use, _, err := measure(procs[:1], func() loadgen.Result {
				return loadgen.Run(cmd.Context(), 1, 1, func(ctx context.Context, _ int) error { return c.Do(ctx, "GET", path, nil, &v) })
			})
			if err != nil {
				return err
			}
			if err := runErr(res); err != nil {
				return err
			}
			kind := "from the newest checkpoint (seq " + strconv.FormatUint(v.FromSeq, 10) + ")"
			if v.Full || v.FromSeq == 0 {
				kind = "from the first event"
			}
			fmt.Printf("%s: %d events %s in %s = %s events/s, keyfleetd CPU %s, ok %t; RSS %s (peak %s); load average %s\n", path,
				v.Checked, kind, ms(res.Elapsed), thousands(float64(v.Checked)/res.Elapsed.Seconds()), ms(use[0].CPU), v.OK,
				mb(use[0].RSSAfter), mb(use[0].PeakRSS), loadgen.LoadAverage())
			return nil
		},
	}
	t.flags(cmd)
	cmd.Flags().BoolVar(&full, "full", false, "check every event from the first (?full=true)")
	return cmd
}
