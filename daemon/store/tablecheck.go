package store

import (
	"crypto/aes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/proto"
)

// checkTable verifies a table file's footer, index and every block's
// checksum, without Badger: Badger opens tables in goroutines of its own
// where a damaged file ends the process (a panic, or log.Fatal from an
// assertion) instead of returning an error, and it skips a table whose
// index checksum fails, serving the store without that table's records.
//
// A table is: blocks ‖ index ‖ uint32be(index length) ‖ checksum (protobuf)
// ‖ uint32be(checksum length). With encryption, the index and each block
// end with the 16-byte IV they were encrypted under (AES-CTR). A block,
// decrypted, is: entries ‖ entry offsets ‖ uint32be(entry count) ‖
// checksum ‖ uint32be(checksum length), the checksum covering everything
// before it.
//
// It returns nil or an error saying what is wrong, never panics.
func checkTable(b []byte, key []byte, compression options.CompressionType) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the table cannot be read (%v)", r)
		}
	}()
	index, indexStart, err := tableIndex(b)
	if err != nil {
		return err
	}
	if key != nil {
		if index, err = decryptTablePart(index, key); err != nil {
			return fmt.Errorf("decrypting the index: %w", err)
		}
	}
	ti := fb.GetRootAsTableIndex(index, 0)
	if compression != options.None && compression != options.Snappy {
		return nil // blocks keyfleet never writes (ZSTD): the index checksum is as far as this check goes
	}
	var bo fb.BlockOffset
	for i := range ti.OffsetsLength() {
		if !ti.Offsets(&bo, i) {
			return fmt.Errorf("block %d is missing from the index", i)
		}
		off, n := int(bo.Offset()), int(bo.Len())
		if off < 0 || n <= 0 || off+n > indexStart {
			return fmt.Errorf("block %d lies outside the table (offset %d, length %d)", i, off, n)
		}
		if err := checkBlock(b[off:off+n], key, compression); err != nil {
			return fmt.Errorf("block %d at offset %d: %w", i, off, err)
		}
	}
	return nil
}

// tableIndex checks the footer and the index checksum and returns the
// index as stored and where it starts.
func tableIndex(b []byte) ([]byte, int, error) {
	pos := len(b) - 4
	if pos < 4 {
		return nil, 0, fmt.Errorf("the file is %d bytes long, too short for a table (truncated?)", len(b))
	}
	clen := int(binary.BigEndian.Uint32(b[pos:]))
	if clen <= 0 || clen > pos-4 {
		return nil, 0, fmt.Errorf("its footer gives a checksum of %d bytes in a %d-byte file (truncated or overwritten?)", clen, len(b))
	}
	pos -= clen
	var chk pb.Checksum
	if err := proto.Unmarshal(b[pos:pos+clen], &chk); err != nil {
		return nil, 0, fmt.Errorf("its index checksum cannot be read: %v", err)
	}
	pos -= 4
	ilen := int(binary.BigEndian.Uint32(b[pos:]))
	if ilen <= 0 || ilen > pos {
		return nil, 0, fmt.Errorf("its footer gives an index of %d bytes at byte %d (truncated or overwritten?)", ilen, pos)
	}
	pos -= ilen
	index := b[pos : pos+ilen]
	if err := verifyChecksum(index, &chk); err != nil {
		return nil, 0, fmt.Errorf("its index: %w", err)
	}
	return index, pos, nil
}

// maxBlockDecoded bounds what a compressed block may claim to hold: a
// block is blockSize bytes of entries and at most one value more, which
// the value threshold keeps under 1 MiB. A damaged length is refused
// before anything that size is allocated.
const maxBlockDecoded = 8 << 20

// checkBlock verifies one block's checksum; a Snappy block (keyfleet's
// tables since 2026-12-07) is decompressed first, as Badger does after
// decrypting it.
func checkBlock(blk, key []byte, compression options.CompressionType) error {
	if key != nil {
		var err error
		if blk, err = decryptTablePart(blk, key); err != nil {
			return err
		}
	}
	if compression == options.Snappy {
		n, err := snappy.DecodedLen(blk)
		if err != nil || n > maxBlockDecoded {
			return fmt.Errorf("its checksum cannot be checked: it does not decompress (a length of %d, %v; damaged)", n, err)
		}
		if blk, err = snappy.Decode(nil, blk); err != nil {
			return fmt.Errorf("its checksum cannot be checked: it does not decompress (%v; damaged)", err)
		}
	}
	if len(blk) < 8 {
		return errors.New("too short for a block")
	}
	clen := int(binary.BigEndian.Uint32(blk[len(blk)-4:]))
	if clen <= 0 || clen > len(blk)-8 {
		return fmt.Errorf("its checksum length %d does not fit (damaged)", clen)
	}
	var chk pb.Checksum
	if err := proto.Unmarshal(blk[len(blk)-4-clen:len(blk)-4], &chk); err != nil {
		return fmt.Errorf("its checksum cannot be read: %v", err)
	}
	return verifyChecksum(blk[:len(blk)-4-clen], &chk)
}

// verifyChecksum is y.VerifyChecksum for an algorithm Badger knows (it
// panics on others).
func verifyChecksum(data []byte, chk *pb.Checksum) error {
	if chk.Algo != pb.Checksum_CRC32C && chk.Algo != pb.Checksum_XXHash64 {
		return fmt.Errorf("unknown checksum algorithm %d (damaged)", chk.Algo)
	}
	if y.CalculateChecksum(data, chk.Algo) != chk.Sum {
		return errors.New("checksum mismatch (the bytes changed after they were written)")
	}
	return nil
}

// decryptTablePart decrypts an index or a block: data ‖ 16-byte IV.
func decryptTablePart(b, key []byte) ([]byte, error) {
	if len(b) < aes.BlockSize {
		return nil, errors.New("too short to hold its IV")
	}
	n := len(b) - aes.BlockSize
	return y.XORBlockAllocate(b[:n], key, b[n:])
}
