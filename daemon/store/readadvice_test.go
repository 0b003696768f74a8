//go:build linux

package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/audit"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// A user list marks the store's mapped tables as read at random
// (MADV_RANDOM: the kernel reads the page asked for, not megabytes around
// it) while it runs, and back to normal when the last list in flight
// ends; the list's answer is the one it gives without.
func TestAUserListReadsTheTablesAtRandom(t *testing.T) {
	dir := t.TempDir()
	st, _ := openAt(t, dir, nil)
	const n = 300
	err := st.Update(context.Background(), func(tx core.Tx) error {
		for i := range n {
			u := core.User{ID: fmt.Sprintf("usr_%06d", i), Username: fmt.Sprintf("u%06d", i), Status: "active", Kind: "person", Groups: []string{"g"}}
			if err := tx.InsertUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // the memtable becomes a table, mapped at the next open
	st, _ = openAt(t, dir, nil)
	defer st.Close()
	tables := mappedTables(st.advice.dir)
	if len(tables) == 0 {
		t.Fatalf("no table of %s is mapped", st.advice.dir)
	}
	random := func() (yes, no int) {
		for _, r := range tables {
			if randomRead(t, r.start) {
				yes++
			} else {
				no++
			}
		}
		return yes, no
	}
	if yes, _ := random(); yes != 0 {
		t.Fatalf("%d of %d tables read at random before any list", yes, len(tables))
	}
	done1 := st.advice.randomReads()
	done2 := st.advice.randomReads() // a second list in flight
	if _, no := random(); no != 0 {
		t.Fatalf("%d of %d tables read as usual while lists run", no, len(tables))
	}
	done1()
	if _, no := random(); no != 0 {
		t.Fatalf("%d of %d tables read as usual while a list still runs", no, len(tables))
	}
	done2()
	if yes, _ := random(); yes != 0 {
		t.Fatalf("%d of %d tables still read at random after the lists", yes, len(tables))
	}

	before := st.advice.lists
	var names []string
	pg := core.PageReq{Limit: 50}
	for {
		var us []core.User
		err := st.View(context.Background(), func(tx core.ReadTx) error {
			var err error
			us, pg.After, err = tx.Users(core.UserFilter{Group: "g"}, pg)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			names = append(names, u.Username)
		}
		if pg.After == "" {
			break
		}
	}
	if st.advice.lists-before < n/50 {
		t.Fatalf("%d pages asked for random reads, want every one", st.advice.lists-before)
	}
	if len(names) != n || names[0] != "u000000" || names[n-1] != fmt.Sprintf("u%06d", n-1) {
		t.Fatalf("the pages listed %d users, %v … %v", len(names), names[:min(1, len(names))], names[max(0, len(names)-1):])
	}
	if yes, _ := random(); yes != 0 {
		t.Fatalf("%d of %d tables still read at random after the pages", yes, len(tables))
	}
}

// randomRead reports whether the mapping at start has the kernel's
// random-read advice ("rr" in /proc/self/smaps' VmFlags).
func randomRead(t *testing.T, start uintptr) bool {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if lo, _, ok := strings.Cut(strings.Fields(line + " x")[0], "-"); ok && !strings.HasSuffix(line, ":") {
			if v, err := strconv.ParseUint(lo, 16, 64); err == nil {
				in = uintptr(v) == start
				continue
			}
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Contains(line+" ", " rr ")
		}
	}
	t.Fatalf("no mapping at %#x in /proc/self/smaps", start)
	return false
}

// An audit list through the indexes reads the events it found at random
// too; one that found none reads nothing more and asks for nothing.
func TestAnAuditListReadsTheEventsItFoundAtRandom(t *testing.T) {
	st, _ := openAt(t, t.TempDir(), nil)
	defer st.Close()
	err := st.Update(context.Background(), func(tx core.Tx) error {
		for i := range 10 {
			ev := &audit.Event{Action: "user.update", Actor: api.Actor{ID: "usr_admin"}, Target: api.Target{Type: "user", ID: fmt.Sprint("usr_", i)}}
			if err := tx.Audit(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	head := st.AuditHead().Seq
	for _, tt := range []struct {
		action string
		found  int
	}{{"user.update", 10}, {"factor.revoke", 0}} {
		before := st.advice.lists
		err := st.View(context.Background(), func(tx core.ReadTx) error {
			seqs, _, err := tx.AuditMatching(core.AuditMatch{Actor: "usr_admin", Action: tt.action, Through: head, Limit: 50, Examine: 100})
			if err == nil && len(seqs) != tt.found {
				err = fmt.Errorf("found %v, want %d events", seqs, tt.found)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if asked := st.advice.lists - before; asked != min(tt.found, 1) {
			t.Errorf("action %s: %d events found, random reads asked %d times", tt.action, tt.found, asked)
		}
	}
}
