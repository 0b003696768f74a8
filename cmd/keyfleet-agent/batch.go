package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/agent"
	"github.com/keyfleet/keyfleet/internal/csvsafe"
)

// batchUser is one row of the batch CSV.
type batchUser struct{ user, label string }

// readBatch reads a CSV whose header names a "user" (or "username")
// column and optionally a "label" column.
func readBatch(path string) ([]batchUser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the batch: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("the batch %s is not a CSV with a header row: %v", path, err)
	}
	col := func(names ...string) int {
		return slices.IndexFunc(rows[0], func(h string) bool { return slices.Contains(names, strings.ToLower(strings.TrimSpace(h))) })
	}
	u, l := col("user", "username"), col("label")
	if u < 0 {
		return nil, fmt.Errorf("the batch %s has no user column in its header", path)
	}
	var out []batchUser
	for _, r := range rows[1:] {
		b := batchUser{user: strings.TrimSpace(r[u])}
		if l >= 0 && l < len(r) {
			b.label = strings.TrimSpace(r[l])
		}
		if b.user != "" {
			out = append(out, b)
		}
	}
	return out, nil
}

// runBatch provisions one key per user, prompting for each next key. The
// journal makes it resumable: users already done are skipped, and a key
// already provisioned for someone is refused.
func runBatch(ctx context.Context, d agent.Daemon, f provisionFlags, stdout, stderr io.Writer) error {
	users, err := readBatch(f.batch)
	if err != nil {
		return err
	}
	f.journal, f.results = orDefault(f.journal, f.batch+".journal"), orDefault(f.results, f.batch+".results.csv")
	j, err := agent.OpenJournal(f.journal)
	if err != nil {
		return err
	}
	defer j.Close()
	failed := 0
	for i, u := range users {
		if e, ok := j.Last(u.user); ok && e.State == agent.JournalDone {
			fmt.Fprintf(stderr, "[%d/%d] %s: already provisioned (key %d), skipped\n", i+1, len(users), u.user, e.Serial)
			continue
		}
		if err := batchOne(ctx, d, f, j, u, fmt.Sprintf("[%d/%d]", i+1, len(users)), stdout, stderr); err != nil {
			if ctx.Err() != nil || errors.Is(err, errStop) {
				writeResults(f.results, users, j)
				return err
			}
			failed++
		}
	}
	if err := writeResults(f.results, users, j); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "batch done: %d users, %d failed; results in %s\n", len(users), failed, f.results)
	if failed > 0 {
		return fmt.Errorf("%d of %d keys failed: see %s, fix them and run the same command again", failed, len(users), f.results)
	}
	return nil
}

var errStop = errors.New("batch stopped: run the same command again to resume")

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// batchOne provisions the next key for one user and journals it.
func batchOne(ctx context.Context, d agent.Daemon, f provisionFlags, j *agent.Journal, u batchUser, step string, stdout, stderr io.Writer) error {
	fmt.Fprintf(stderr, "%s insert the key for %s, then press Enter (q to stop): ", step, u.user)
	answer, err := readLine()
	if err != nil || strings.TrimSpace(answer) == "q" {
		return errStop
	}
	serial, err := currentSerial(f)
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", step, u.user, err)
		return j.Record(agent.JournalEntry{User: u.user, State: agent.JournalFailed, Error: err.Error()})
	}
	if holder, ok := j.HolderOf(serial); ok && holder != u.user {
		err := fmt.Errorf("key %d was already provisioned for %s in this batch: insert a fresh key", serial, holder)
		fmt.Fprintf(stderr, "%s %s: %v\n", step, u.user, err)
		j.Record(agent.JournalEntry{User: u.user, State: agent.JournalFailed, Error: err.Error()})
		return err
	}
	if err := j.Record(agent.JournalEntry{User: u.user, State: agent.JournalStarted, Serial: serial}); err != nil {
		return err
	}
	f.label = orDefault(u.label, f.label)
	out, err := provisionOne(ctx, d, f, u.user, "", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", step, u.user, err)
		return j.Record(agent.JournalEntry{User: u.user, State: agent.JournalFailed, Serial: serial, Error: err.Error()})
	}
	printOutcome(stdout, u.user, out)
	fmt.Fprintf(stderr, "%s %s: done\n", step, u.user)
	return j.Record(agent.JournalEntry{User: u.user, State: agent.JournalDone, Serial: serial, Factors: nonEmpty(out.piv, out.fido2)})
}

// currentSerial reads the serial of the key in front of the operator.
func currentSerial(f provisionFlags) (uint32, error) {
	if !f.piv {
		return 0, nil // FIDO2 alone exposes no serial before attestation
	}
	tok, err := openOne(f.reader)
	if err != nil {
		return 0, err
	}
	defer tok.Close()
	info, err := tok.Info()
	return info.Serial, err
}

func nonEmpty(s ...string) []string {
	return slices.DeleteFunc(s, func(v string) bool { return v == "" })
}

// writeResults writes one row per user from the journal: no secrets.
func writeResults(path string, users []batchUser, j *agent.Journal) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	w := csvsafe.NewWriter(f) // error messages and user names are not formulas
	w.Write([]string{"user", "state", "serial", "factors", "error"})
	for _, u := range users {
		e, ok := j.Last(u.user)
		if !ok {
			e.State = "not_started"
		}
		serial := ""
		if e.Serial != 0 {
			serial = strconv.FormatUint(uint64(e.Serial), 10)
		}
		w.Write([]string{u.user, e.State, serial, strings.Join(e.Factors, " "), e.Error})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
