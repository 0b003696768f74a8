package store

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"

	"github.com/dgraph-io/badger/v4/y"
)

// Badger replays a write-ahead log at open until the first entry whose
// checksum fails, and truncates the log there: whatever followed is gone,
// silently. scanLog walks a log the way Badger's replay does, before
// Badger sees it, and tells a log that simply ends (zeros, or the prefix
// of one entry a crash cut short) from one with intact entries after a
// bad one: damage that Badger would drop without a word.
//
// A log is a 20-byte header (data key id, base IV) and then entries:
//
//	meta (1) ‖ user meta (1) ‖ uvarint key length ‖ uvarint value length ‖
//	uvarint expiry ‖ key ‖ value ‖ CRC-32C of everything before it
//
// with key and value encrypted (AES-CTR, IV = base IV ‖ uint32be(entry
// offset)) when the store is. Keys end with 8 bytes of version. Entries
// of a transaction carry bitTxn and end with a bitFinTxn entry whose value
// is the version in decimal; Badger keeps only complete transactions.

const (
	logHeaderSize = 20
	bitTxn        = 1 << 6
	bitFinTxn     = 1 << 7
	// maxResync bounds how far past a bad entry scanLog looks for an intact
	// one, so that a log of noise cannot make the check slow.
	maxResync = 8 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// logScan is what scanLog found in one log.
type logScan struct {
	// End is where Badger's replay stops: after the last complete
	// transaction. Badger truncates the log there.
	End int64
	// Heads are the audit heads written by complete transactions before
	// End, in order (the last is the log's last intact audit sequence).
	LastSeq uint64
	HasSeq  bool
	// Damaged is set when intact entries follow a bad one: DamageAt is the
	// bad entry's offset, ResumeAt the next intact entry's, and SeqAfter
	// the highest audit sequence written by complete transactions after it
	// (0 if none).
	Damaged  bool
	DamageAt int64
	ResumeAt int64
	SeqAfter uint64
}

// decryptFunc decrypts an entry's key and value (nil: not encrypted).
type decryptFunc func(kv []byte, offset uint32) ([]byte, error)

// scanLog scans a log's bytes. keyFor gives the decryption for the log's
// data key id (nil when the store is not encrypted).
func scanLog(b []byte, keyFor func(id uint64, baseIV []byte) (decryptFunc, error)) (logScan, error) {
	var res logScan
	if len(b) < logHeaderSize {
		return res, nil
	}
	dec, err := keyFor(binary.BigEndian.Uint64(b[:8]), b[8:20])
	if err != nil {
		return res, err
	}
	stop, end, last, ok := replay(b, logHeaderSize, dec, false)
	res.End, res.LastSeq, res.HasSeq = int64(end), last, ok
	resume, found := resync(b, stop, dec)
	if !found {
		return res, nil
	}
	res.Damaged, res.DamageAt, res.ResumeAt = true, int64(stop), int64(resume)
	_, _, after, _ := replay(b, resume, dec, true)
	res.SeqAfter = after
	return res, nil
}

// walEntry is one parsed entry.
type walEntry struct {
	meta  byte
	key   []byte // decrypted, with its version suffix
	value []byte // decrypted
	size  int    // bytes on disk
}

// parseEntry reads the entry at off; ok is false where Badger's replay
// would stop (a zero entry, a bad length or a bad checksum).
func parseEntry(b []byte, off int, dec decryptFunc) (walEntry, bool) {
	rest := b[off:]
	if len(rest) < 2 {
		return walEntry{}, false
	}
	i := 2
	klen, n := binary.Uvarint(rest[i:])
	if n <= 0 {
		return walEntry{}, false
	}
	i += n
	vlen, n := binary.Uvarint(rest[i:])
	if n <= 0 {
		return walEntry{}, false
	}
	i += n
	if _, n = binary.Uvarint(rest[i:]); n <= 0 {
		return walEntry{}, false
	}
	i += n
	if klen == 0 || klen > 1<<16 || vlen > uint64(len(rest)) || uint64(i)+klen+vlen+4 > uint64(len(rest)) {
		return walEntry{}, false
	}
	body := int(uint64(i) + klen + vlen)
	if crc32.Checksum(rest[:body], crcTable) != binary.BigEndian.Uint32(rest[body:]) {
		return walEntry{}, false
	}
	kv := rest[i:body]
	if dec != nil {
		var err error
		if kv, err = dec(kv, uint32(off)); err != nil {
			return walEntry{}, false
		}
	}
	return walEntry{meta: rest[0], key: kv[:klen], value: kv[klen:], size: body + 4}, true
}

// replay walks entries from off as Badger's replay does. It returns where
// it stopped, where the last complete transaction ends, and the last audit
// sequence such a transaction wrote. midway is set when off may fall
// inside a transaction (after damage): the end of one whose start was
// lost is then passed over.
func replay(b []byte, off int, dec decryptFunc, midway bool) (stop, end int, lastSeq uint64, hasSeq bool) {
	end = off
	var txnTs uint64
	var pending uint64
	var pendingOK bool
	for {
		e, ok := parseEntry(b, off, dec)
		if !ok {
			return off, end, lastSeq, hasSeq
		}
		switch {
		case e.meta&bitTxn != 0:
			ts := y.ParseTs(e.key)
			if txnTs == 0 {
				txnTs = ts
			}
			if txnTs != ts {
				return off, end, lastSeq, hasSeq
			}
			if seq, ok := headSeq(e); ok {
				pending, pendingOK = seq, true
			}
		case e.meta&bitFinTxn != 0 && txnTs == 0 && midway:
			// the end of a transaction whose start was damaged
		case e.meta&bitFinTxn != 0:
			ts, err := strconv.ParseUint(string(e.value), 10, 64)
			if err != nil || ts != txnTs {
				return off, end, lastSeq, hasSeq
			}
			txnTs, end = 0, off+e.size
			if pendingOK {
				lastSeq, hasSeq, pendingOK = pending, true, false
			}
		default:
			if txnTs != 0 {
				return off, end, lastSeq, hasSeq
			}
			end = off + e.size
			if seq, ok := headSeq(e); ok {
				lastSeq, hasSeq = seq, true
			}
		}
		off += e.size
	}
}

// headSeq reads an audit head entry's sequence number.
func headSeq(e walEntry) (uint64, bool) {
	if string(y.ParseKey(e.key)) != kAuditHead || len(e.value) != 8+32 {
		return 0, false
	}
	return binary.BigEndian.Uint64(e.value), true
}

// resync looks past a stop for an intact entry. Only zeros, or the cut
// prefix of one entry, may follow the end of a log that was not damaged:
// an intact entry after the stop means the bytes at the stop were written
// whole once and changed since.
func resync(b []byte, stop int, dec decryptFunc) (int, bool) {
	last := lastNonZero(b)
	if last < stop {
		return 0, false
	}
	limit := min(last+1, stop+maxResync)
	for off := stop + 1; off < limit; off++ {
		if b[off] == 0 && b[off+1] == 0 {
			continue // an entry's meta bytes are never both zero with a key
		}
		if _, ok := parseEntry(b, off, nil); ok {
			return off, true
		}
	}
	return 0, false
}

// lastNonZero is the offset of b's last non-zero byte, -1 if none.
func lastNonZero(b []byte) int {
	i := len(b)
	for i >= 8 && binary.LittleEndian.Uint64(b[i-8:i]) == 0 {
		i -= 8
	}
	for i > 0 && b[i-1] == 0 {
		i--
	}
	return i - 1
}
