package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// ScanPolicyFacts reads the pf/ index in one ordered pass: each user's
// record, then their first-applied times, factors and exemptions. It
// copies each user's records, undecoded, into a bundle whose Facts
// decodes them, so that callers decode on every CPU while the scan goes
// on. Records of a user whose own record is missing are skipped.
func (r *readTx) ScanPolicyFacts(after string, fn func(core.PolicyFactsRecord) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(pPolicyFacts)
	opts.PrefetchValues = false // the values sit in the LSM tree beside their keys
	it := r.txn.NewIterator(opts)
	defer it.Close()
	start := opts.Prefix
	if after != "" {
		start = key(pPolicyFacts, after, "\x01") // past every record of after
	}
	var cur *factsBundle
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		uid, sub, isSub := bytes.Cut(item.Key()[len(pPolicyFacts):], []byte{0})
		tag, id := byte(tagUser), uid
		switch {
		case !isSub:
			if cur != nil {
				if err := fn(cur); err != nil {
					return err
				}
			}
			cur = &factsBundle{uid: string(uid)}
		case cur == nil || len(sub) == 0 || string(uid) != cur.uid:
			continue
		default:
			tag, id = sub[0], sub[1:]
		}
		if err := item.Value(func(v []byte) error { cur.add(tag, id, v); return nil }); err != nil {
			return fmt.Errorf("reading %q: %w", item.Key(), err)
		}
	}
	if cur == nil {
		return nil
	}
	return fn(cur)
}

// UserPolicyFacts reads one user's records of the pf/ index, the way
// ScanPolicyFacts does for all of them.
func (r *readTx) UserPolicyFacts(userID string) (core.PolicyFacts, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = key(pPolicyFacts, userID)
	opts.PrefetchValues = false
	it := r.txn.NewIterator(opts)
	defer it.Close()
	var fb *factsBundle
	for it.Seek(opts.Prefix); it.Valid(); it.Next() {
		item := it.Item()
		uid, sub, isSub := bytes.Cut(item.Key()[len(pPolicyFacts):], []byte{0})
		if string(uid) != userID {
			continue // another user whose id starts with this one's
		}
		tag, id := byte(tagUser), uid
		switch {
		case !isSub:
			fb = &factsBundle{uid: userID}
		case fb == nil || len(sub) == 0:
			continue
		default:
			tag, id = sub[0], sub[1:]
		}
		if err := item.Value(func(v []byte) error { fb.add(tag, id, v); return nil }); err != nil {
			return core.PolicyFacts{}, fmt.Errorf("reading %q: %w", item.Key(), err)
		}
	}
	if fb == nil {
		return core.PolicyFacts{}, &core.NotFoundError{Kind: "policy facts of user", Ref: userID}
	}
	return fb.Facts()
}

// factsBundle is one user's pf/ records, copied out of the store: a
// sequence of tag, id and value (uvarint-length bytes each).
type factsBundle struct {
	uid string
	b   []byte
}

func (fb *factsBundle) add(tag byte, id, v []byte) {
	fb.b = append(fb.b, tag)
	fb.b = binary.AppendUvarint(fb.b, uint64(len(id)))
	fb.b = append(fb.b, id...)
	fb.b = binary.AppendUvarint(fb.b, uint64(len(v)))
	fb.b = append(fb.b, v...)
}

// decoders keeps a decoder (and its interned strings) per CPU.
var decoders = sync.Pool{New: func() any { return newFactsDecoder() }}

// Facts decodes the bundle. Errors wrap errFacts.
func (fb *factsBundle) UserID() string { return fb.uid }

func (fb *factsBundle) Facts() (core.PolicyFacts, error) {
	d := decoders.Get().(*factsDecoder)
	defer decoders.Put(d)
	var out core.PolicyFacts
	rest := fb.b
	for len(rest) > 0 {
		var tag byte
		var id, v []byte
		tag, id, v, rest = nextEntry(rest)
		if v == nil {
			return out, fmt.Errorf("policy facts of user %s: %w: bundle", fb.uid, errFacts)
		}
		d.reset(v)
		switch tag {
		case tagUser:
			out.User = d.userFacts(fb.uid)
		case tagFactor:
			out.Factors = append(out.Factors, d.factorFacts(string(id)))
		case tagFirstApplied:
			out.FirstApplied = d.sharedFirstApplied()
		case tagExemption:
			out.Exemptions = append(out.Exemptions, d.exemption(fb.uid))
		}
		if d.err != nil {
			return out, fmt.Errorf("policy facts of user %s (%c%s): %w; rebuild the index (see docs/policy.md)", fb.uid, tag, id, d.err)
		}
	}
	return out, nil
}

// nextEntry splits the first entry off a bundle; v is nil when the bundle
// is damaged.
func nextEntry(b []byte) (tag byte, id, v, rest []byte) {
	tag = b[0]
	d := factsDecoder{b: b[1:]}
	id = d.bytes()
	v = d.bytes()
	if d.err != nil {
		return tag, nil, nil, nil
	}
	if v == nil {
		v = []byte{}
	}
	return tag, id, v, d.b
}

// setter is what writes records: a transaction, or a WriteBatch when the
// store builds its index at open (and in benchmarks).
type setter interface{ Set(k, v []byte) error }

// putUserRecords writes a user's record and its policy facts.
func putUserRecords(s setter, u core.User) error {
	b, err := encodeUser(&u)
	if err != nil {
		return fmt.Errorf("encoding user %s: %w", u.ID, err)
	}
	if err := s.Set(key(pUser, u.ID), b); err != nil {
		return err
	}
	return s.Set(userFactsKey(u.ID), encodeUserFacts(core.UserFactsOf(u)))
}

// putFactorRecords writes a factor's record, its indexes and its policy
// facts.
func putFactorRecords(s setter, f core.Factor) error {
	if err := s.Set(userFactorKey(f.UserID, f.ID), nil); err != nil {
		return err
	}
	if f.DeviceID != "" {
		if err := s.Set(devFactorKey(f.DeviceID, f.ID), nil); err != nil {
			return err
		}
	}
	if err := s.Set(factsSubKey(f.UserID, tagFactor, f.ID), encodeFactorFacts(core.FactsOf(f))); err != nil {
		return err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding factor %s: %w", f.ID, err)
	}
	return s.Set(key(pFactor, f.ID), b)
}
