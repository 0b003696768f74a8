package shamir

import (
	"errors"
	"fmt"
	"io"
)

// ErrParams: Split was asked for a split that is not possible.
var ErrParams = errors.New("shamir: impossible split")

// ErrShares: Combine was given shares that cannot come from one split
// (too few, different lengths, a repeated or zero x).
var ErrShares = errors.New("shamir: invalid shares")

// Split splits secret into n shares, any m of which recover it, drawing
// the polynomials' coefficients from rnd (crypto/rand.Reader in
// production). 2 <= m <= n <= 255 and the secret must not be empty;
// otherwise it returns an error wrapping ErrParams. Share i has x = i+1.
func Split(secret []byte, n, m int, rnd io.Reader) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, fmt.Errorf("%w: empty secret", ErrParams)
	case m < 2 || m > n || n > 255:
		return nil, fmt.Errorf("%w: %d shares with a threshold of %d (want 2 <= threshold <= shares <= 255)", ErrParams, n, m)
	}
	shares := make([][]byte, n)
	for i := range shares {
		shares[i] = make([]byte, len(secret)+1)
		shares[i][len(secret)] = byte(i + 1)
	}
	coeffs := make([]byte, m) // coeffs[0] is the secret byte
	defer clear(coeffs)
	for b, s := range secret {
		coeffs[0] = s
		if _, err := io.ReadFull(rnd, coeffs[1:]); err != nil {
			return nil, fmt.Errorf("shamir: drawing coefficients: %w", err)
		}
		for i := range shares {
			shares[i][b] = evaluate(coeffs, byte(i+1))
		}
	}
	return shares, nil
}

// Combine recovers the secret from shares of one split. With at least the
// threshold it returns the secret; with fewer it returns bytes unrelated
// to it, which only a check by the caller (a hash of the secret) can tell.
// Shares that cannot come from one split give an error wrapping ErrShares.
func Combine(shares [][]byte) ([]byte, error) {
	xs, err := checkShares(shares)
	if err != nil {
		return nil, err
	}
	// Lagrange interpolation at 0: secret = sum y_i * prod_{j!=i} x_j / (x_j - x_i),
	// and subtraction is addition in GF(2^8).
	weights := make([]byte, len(xs))
	for i, xi := range xs {
		num, den := byte(1), byte(1)
		for j, xj := range xs {
			if i != j {
				num = mul(num, xj)
				den = mul(den, xj^xi)
			}
		}
		weights[i] = mul(num, inverse(den))
	}
	secret := make([]byte, len(shares[0])-1)
	for b := range secret {
		var s byte
		for i, sh := range shares {
			s ^= mul(sh[b], weights[i])
		}
		secret[b] = s
	}
	return secret, nil
}

// checkShares returns the shares' x values, or why they cannot be
// combined.
func checkShares(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 {
		return nil, fmt.Errorf("%w: %d given, at least 2 needed", ErrShares, len(shares))
	}
	size := len(shares[0])
	if size < 2 {
		return nil, fmt.Errorf("%w: a share is too short", ErrShares)
	}
	xs := make([]byte, len(shares))
	var seen [256]bool
	for i, sh := range shares {
		if len(sh) != size {
			return nil, fmt.Errorf("%w: shares of different lengths", ErrShares)
		}
		x := sh[size-1]
		if x == 0 || seen[x] {
			return nil, fmt.Errorf("%w: share %d repeats another's x or has none", ErrShares, i+1)
		}
		seen[x], xs[i] = true, x
	}
	return xs, nil
}

// evaluate is the polynomial with coefficients c (c[0] first) at x, by
// Horner's rule.
func evaluate(c []byte, x byte) byte {
	var y byte
	for i := len(c) - 1; i >= 0; i-- {
		y = mul(y, x) ^ c[i]
	}
	return y
}

// mul multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, in constant
// time: eight rounds of shift-and-add with masks instead of branches.
func mul(a, b byte) byte {
	var p byte
	for range 8 {
		p ^= -(b & 1) & a                 // add a when b's low bit is set
		a = (a << 1) ^ (-(a >> 7) & 0x1b) // times x, reduced
		b >>= 1
	}
	return p
}

// inverse is a^254 = a^-1 for a != 0 (and 0 for 0), by a fixed chain of
// squarings and multiplications.
func inverse(a byte) byte {
	// 254 = 0b11111110: square-and-multiply over its bits.
	r := byte(1)
	for bit := 7; bit >= 0; bit-- {
		r = mul(r, r)
		if (254>>bit)&1 == 1 {
			r = mul(r, a)
		}
	}
	return r
}
