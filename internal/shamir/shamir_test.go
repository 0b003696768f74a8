package shamir

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"os"
	"strings"
	"testing"
)

// slowMul is GF(2^8) multiplication the schoolbook way: a carry-less
// product, then reduction by the AES polynomial 0x11b.
func slowMul(a, b byte) byte {
	var p uint16
	for i := range 8 {
		if b&(1<<i) != 0 {
			p ^= uint16(a) << i
		}
	}
	for bit := 15; bit >= 8; bit-- {
		if p&(1<<bit) != 0 {
			p ^= 0x11b << (bit - 8)
		}
	}
	return byte(p)
}

func TestFieldArithmetic(t *testing.T) {
	if got := mul(0x57, 0x83); got != 0xc1 {
		t.Fatalf("{57}·{83} = %02x, FIPS 197 §4.2 says c1", got)
	}
	for a := range 256 {
		for b := range 256 {
			if got, want := mul(byte(a), byte(b)), slowMul(byte(a), byte(b)); got != want {
				t.Fatalf("mul(%02x, %02x) = %02x, want %02x", a, b, got, want)
			}
		}
		if a != 0 && mul(byte(a), inverse(byte(a))) != 1 {
			t.Fatalf("%02x·inverse(%02x) != 1", a, a)
		}
	}
}

// seeded is a reproducible random source for the property tests.
type seeded struct{ r *mrand.ChaCha8 }

func newSeeded(seed byte) seeded { return seeded{mrand.NewChaCha8([32]byte{seed})} }

func (s seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

// subsets calls f with every subset of {0..n-1} of size k (in order).
func subsets(n, k int, f func([]int)) {
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			f(cur)
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
}

func pick(shares [][]byte, idx []int) [][]byte {
	out := make([][]byte, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

func TestAnyMOfNSharesRecoverTheSecret(t *testing.T) {
	rnd := newSeeded(1)
	r := mrand.New(rnd.r)
	for n := 2; n <= 9; n++ {
		for m := 2; m <= n; m++ {
			secret := make([]byte, 1+r.IntN(40))
			rnd.Read(secret)
			shares, err := Split(secret, n, m, rnd)
			if err != nil {
				t.Fatal(err)
			}
			for k := m; k <= n; k++ {
				subsets(n, k, func(idx []int) {
					got, err := Combine(pick(shares, idx))
					if err != nil || !bytes.Equal(got, secret) {
						t.Fatalf("n=%d m=%d: shares %v give %x (%v), want %x", n, m, idx, got, err, secret)
					}
				})
			}
		}
	}
	// The largest split break-glass allows, in random orders.
	secret := make([]byte, 32)
	rnd.Read(secret)
	shares, _ := Split(secret, 16, 11, rnd)
	for range 200 {
		idx := r.Perm(16)[:11+r.IntN(6)]
		if got, _ := Combine(pick(shares, idx)); !bytes.Equal(got, secret) {
			t.Fatalf("shares %v do not recover the secret", idx)
		}
	}
}

// TestFewerThanMSharesRevealNothing: m-1 shares are consistent with every
// secret. For any other secret, a share exists that completes them to it,
// so the shares alone rule nothing out; and a single share of a 2-of-n
// split is uniform whatever the secret.
func TestFewerThanMSharesRevealNothing(t *testing.T) {
	rnd := newSeeded(2)
	for _, nm := range [][2]int{{2, 2}, {5, 3}, {9, 9}, {16, 11}} {
		n, m := nm[0], nm[1]
		secret, other := make([]byte, 32), make([]byte, 32)
		rnd.Read(secret)
		rnd.Read(other)
		shares, _ := Split(secret, n, m, rnd)
		held := shares[:m-1]
		forged := completeTo(held, other, byte(n+1))
		got, err := Combine(append(append([][]byte{}, held...), forged))
		if err != nil || !bytes.Equal(got, other) {
			t.Fatalf("n=%d m=%d: %d shares could not be completed to another secret", n, m, m-1)
		}
		if got, _ := Combine(held); m > 2 && bytes.Equal(got, secret) {
			t.Fatalf("n=%d m=%d: %d shares recovered the secret", n, m, m-1)
		}
	}
	// One share of a 2-of-2 split: its bytes are uniform for secret 0x00
	// and 0xff alike (chi-square over 256 values, 25,600 samples each).
	for _, s := range []byte{0x00, 0xff} {
		var counts [256]int
		for range 25600 {
			sh, _ := Split([]byte{s}, 2, 2, rnd)
			counts[sh[0][0]]++
		}
		chi := 0.0
		for _, c := range counts {
			d := float64(c) - 100
			chi += d * d / 100
		}
		if chi > 360 { // 255 degrees of freedom: mean 255, sd 22.6
			t.Fatalf("secret %02x: a share's bytes are not uniform (chi-square %.0f)", s, chi)
		}
	}
}

// completeTo returns the share at x that, with held, combines to secret:
// the polynomial through (0, secret) and held, evaluated at x.
func completeTo(held [][]byte, secret []byte, x byte) []byte {
	size := len(held[0])
	out := make([]byte, size)
	out[size-1] = x
	xs := []byte{0}
	for _, h := range held {
		xs = append(xs, h[size-1])
	}
	for b := range size - 1 {
		ys := []byte{secret[b]}
		for _, h := range held {
			ys = append(ys, h[b])
		}
		out[b] = lagrangeAt(xs, ys, x)
	}
	return out
}

func lagrangeAt(xs, ys []byte, x byte) byte {
	var r byte
	for i := range xs {
		num, den := byte(1), byte(1)
		for j := range xs {
			if i != j {
				num = mul(num, x^xs[j])
				den = mul(den, xs[i]^xs[j])
			}
		}
		r ^= mul(ys[i], mul(num, inverse(den)))
	}
	return r
}

// TestSharesSplitByTheOriginalCodeStillCombine: break-glass shares made by
// keyfleet's first release (with hashicorp/vault/shamir) open with this
// package: every threshold-sized subset recovers the secret.
func TestSharesSplitByTheOriginalCodeStillCombine(t *testing.T) {
	b, err := os.ReadFile("testdata/kfbg1-vault-split.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Secret    string   `json:"secret_hex"`
		Threshold int      `json:"threshold"`
		KFBG1     []string `json:"kfbg1"`
	}
	if err := json.Unmarshal(b, &vectors); err != nil || len(vectors) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	for _, v := range vectors {
		want, _ := hex.DecodeString(v.Secret)
		var shares [][]byte
		for _, s := range v.KFBG1 {
			f := strings.Split(s, ".") // kfbg1.<set>.<n>.<base64url>, as daemon/core reads it
			raw, err := base64.RawURLEncoding.DecodeString(f[3])
			if err != nil {
				t.Fatal(err)
			}
			shares = append(shares, raw)
		}
		subsets(len(shares), v.Threshold, func(idx []int) {
			if got, err := Combine(pick(shares, idx)); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%d-of-%d: shares %v give %x (%v)", v.Threshold, len(shares), idx, got, err)
			}
		})
	}
}

func TestCombineRefusesSharesThatCannotBeFromOneSplit(t *testing.T) {
	shares, _ := Split([]byte("break glass"), 3, 2, rand.Reader)
	short := append([]byte{}, shares[1][1:]...)
	zeroX := append([]byte{}, shares[1]...)
	zeroX[len(zeroX)-1] = 0
	tests := []struct {
		name   string
		shares [][]byte
	}{
		{"no share", nil},
		{"one share", shares[:1]},
		{"shares of different lengths", [][]byte{shares[0], short}},
		{"the same share twice", [][]byte{shares[0], shares[0]}},
		{"a share whose x is zero", [][]byte{shares[0], zeroX}},
		{"shares of one byte", [][]byte{{1}, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Combine(tt.shares); !errors.Is(err, ErrShares) {
				t.Fatalf("got %v, want ErrShares", err)
			}
		})
	}
}

func TestSplitRefusesImpossibleSplits(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		n, m   int
	}{
		{"an empty secret", nil, 3, 2},
		{"a threshold of one", []byte{1}, 3, 1},
		{"a threshold above the shares", []byte{1}, 3, 4},
		{"more shares than x values", []byte{1}, 256, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Split(tt.secret, tt.n, tt.m, rand.Reader); !errors.Is(err, ErrParams) {
				t.Fatalf("got %v, want ErrParams", err)
			}
		})
	}
	if _, err := Split([]byte{1}, 3, 2, bytes.NewReader(nil)); err == nil || errors.Is(err, ErrParams) {
		t.Fatalf("a failing random source: %v", err)
	}
}

func FuzzSplitCombine(f *testing.F) {
	f.Add([]byte("secret"), uint8(5), uint8(3))
	f.Fuzz(func(t *testing.T, secret []byte, n, m uint8) {
		shares, err := Split(secret, int(n), int(m), rand.Reader)
		if err != nil {
			return
		}
		got, err := Combine(shares[len(shares)-int(m):])
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("%d-of-%d: %x (%v), want %x", m, n, got, err, secret)
		}
	})
}

func BenchmarkSplitCombineBreakGlass(b *testing.B) {
	secret := make([]byte, 32)
	for b.Loop() {
		shares, _ := Split(secret, 5, 3, rand.Reader)
		Combine(shares[:3])
	}
}
