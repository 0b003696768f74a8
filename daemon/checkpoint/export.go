package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/keyfleet/keyfleet/daemon/audit"
)

// ExportReport is what VerifyExport checked.
type ExportReport struct {
	First, Last uint64 // the sequence numbers the export holds
	Checked     uint64 // records whose hash was recomputed and linked
	// Reached is set when the export holds the checkpoint's record with
	// its hash; Beyond counts the records after it.
	Reached bool
	Beyond  uint64
}

// exportLine is one line of keyfleet audit export: the event's fields,
// its previous hash and its hash.
type exportLine struct {
	audit.Event
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// VerifyExport checks an exported audit log (JSON lines, as keyfleet
// audit export writes them) offline: it recomputes every record's hash
// from its fields, checks that each links to the one before, and that the
// export reaches the checkpoint's sequence with the checkpoint's hash. An
// export that starts after seq 1 (--after) is checked from its first
// record's previous hash. It does not check the checkpoint's signature:
// do that first (Checkpoint.Verify).
//
// It returns a *audit.BreakError for a record that does not link or
// whose hash is not its content's, and a *MismatchError when the export
// stops short of the checkpoint or disagrees with it.
func VerifyExport(r io.Reader, c Checkpoint) (ExportReport, error) {
	want, err := c.Head()
	if err != nil {
		return ExportReport{}, err
	}
	var rep ExportReport
	var v audit.Verifier
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		rec, err := recordOf(line)
		if err != nil {
			return rep, fmt.Errorf("line %d: %w", rep.Checked+1, err)
		}
		if rep.Checked == 0 {
			rep.First = rec.Seq
			v = audit.VerifierFrom(audit.Head{Seq: rec.Seq - 1, Hash: rec.Prev})
		}
		if err := v.Check(rec.Seq, rec); err != nil {
			return rep, err
		}
		rep.Checked++
		rep.Last = rec.Seq
		switch {
		case rec.Seq == c.Seq && rec.Hash != want.Hash:
			return rep, &MismatchError{Checkpoint: c, Head: v.Head()}
		case rec.Seq == c.Seq:
			rep.Reached = true
		case rec.Seq > c.Seq:
			rep.Beyond++
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("reading the export: %w", err)
	}
	if !rep.Reached && c.Seq > 0 {
		if rep.Checked > 0 && rep.First > c.Seq {
			return rep, fmt.Errorf("the export starts at seq %d, after the checkpoint's seq %d: export from before it (keyfleet audit export --after %d)", rep.First, c.Seq, c.Seq-1)
		}
		return rep, &MismatchError{Checkpoint: c, Head: v.Head(), Behind: true, Missing: c.Seq - v.Head().Seq}
	}
	return rep, nil
}

// recordOf rebuilds a chain record from an export line: its body is the
// event's JSON as the chain hashed it (numbers kept as written).
func recordOf(line []byte) (audit.Record, error) {
	var l exportLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&l); err != nil {
		return audit.Record{}, fmt.Errorf("not an exported audit event: %v", err)
	}
	prev, err1 := hex.DecodeString(l.PrevHash)
	hash, err2 := hex.DecodeString(l.Hash)
	if err1 != nil || err2 != nil || len(prev) != audit.HashSize || len(hash) != audit.HashSize || l.Seq == 0 {
		return audit.Record{}, fmt.Errorf("event %d has no valid seq, prev_hash and hash", l.Seq)
	}
	ch := audit.Chain{Head: audit.Head{Seq: l.Seq - 1}}
	copy(ch.Head.Hash[:], prev)
	ev := l.Event
	rec, err := ch.Next(&ev)
	if err != nil {
		return audit.Record{}, err
	}
	copy(rec.Hash[:], hash) // as exported: Check recomputes it from the body
	return rec, nil
}
