package store

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestMeasureWhatBadgerWritesBeyondTheLiveData measures the space Badger
// needs for a while beyond what it keeps: the output of a flush or a
// compaction before its inputs are deleted. The store's reserve
// (DefaultReserve) must cover it. It writes about 1 GB, so it runs only
// when asked: KEYFLEET_MEASURE_RESERVE=DIR, DIR on a file system of its
// own (a tmpfs of 2 GB will do); docs/operations.md has its figures.
func TestMeasureWhatBadgerWritesBeyondTheLiveData(t *testing.T) {
	dir := os.Getenv("KEYFLEET_MEASURE_RESERVE")
	if dir == "" {
		t.Skip("skipped: set KEYFLEET_MEASURE_RESERVE=DIR (a file system of its own) to measure what the store's reserve must cover")
	}
	st, err := Open(Options{Dir: dir, EncryptionKey: testKey, Reserve: 1})
	if err != nil {
		t.Fatal(err)
	}
	total, _ := freeSpace(dir)
	var samples []int64 // bytes used, every millisecond
	var mu sync.Mutex
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			free, _ := freeSpace(dir)
			mu.Lock()
			samples = append(samples, int64(total)-int64(free))
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	val := make([]byte, 4096)
	const keys = 100_000
	start := time.Now()
	var written int64
	for written < 1<<30 {
		err := st.update(func(txn *badger.Txn) error {
			for range 16 {
				n, _ := rand.Int(rand.Reader, big.NewInt(keys))
				rand.Read(val)
				if err := txn.Set([]byte(fmt.Sprintf("m/%08d", n.Int64())), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		written += 16 * 4096
	}
	t.Logf("wrote %d MiB in %s", written>>20, time.Since(start).Round(time.Millisecond))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	<-done
	opened := time.Now()
	if _, err := checkFiles(Options{Dir: dir, EncryptionKey: testKey}); err != nil {
		t.Fatal(err)
	}
	t.Logf("checking every log and table before an open took %s for %d MiB of tables", time.Since(opened).Round(time.Millisecond), dirSize(dir)>>20)
	excess, at := peakExcess(samples)
	t.Logf("store size at the end: %d MiB; peak space in use beyond what was kept afterwards: %d MiB (at %d ms, with %d MiB in use); memtable %d MiB",
		samples[len(samples)-1]>>20, excess>>20, at, samples[at]>>20, defaultMemTableSize>>20)
	worst := 0.0
	for i, e := range excesses(samples) {
		if r := float64(e) / float64(DefaultReserve(samples[i]-e, defaultMemTableSize)); r > worst {
			worst = r
		}
	}
	t.Logf("the most that was needed at any moment is %.0f%% of the default reserve for the store's size then", 100*worst)
	if worst > 1 {
		t.Errorf("the default reserve is too small")
	}
}

// excesses gives, for every moment, the space in use beyond the least
// space in use at any later moment.
func excesses(used []int64) []int64 {
	out := make([]int64, len(used))
	low := used[len(used)-1]
	for i := len(used) - 1; i >= 0; i-- {
		low = min(low, used[i])
		out[i] = used[i] - low
	}
	return out
}

// peakExcess is the largest amount by which the space in use at some
// moment exceeded the least space in use at any later moment: what was
// written and deleted again.
func peakExcess(used []int64) (int64, int) {
	var peak int64
	var at int
	low := used[len(used)-1]
	for i := len(used) - 1; i >= 0; i-- {
		low = min(low, used[i])
		if e := used[i] - low; e > peak {
			peak, at = e, i
		}
	}
	return peak, at
}
