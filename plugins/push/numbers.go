package push

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
)

// numbers draws the number to match and three choices holding it and two
// other two-digit numbers (10 to 99), in random order.
func numbers(r io.Reader) (choices []string, right string, err error) {
	var picked []int
	for len(picked) < 3 {
		n, err := uniform(r, 90)
		if err != nil {
			return nil, "", fmt.Errorf("push: drawing numbers: %w", err)
		}
		n += 10
		if !contains(picked, n) {
			picked = append(picked, n)
		}
	}
	pos, err := uniform(r, 3)
	if err != nil {
		return nil, "", fmt.Errorf("push: drawing numbers: %w", err)
	}
	// picked[0] is the right one; it goes to position pos.
	picked[0], picked[pos] = picked[pos], picked[0]
	for _, n := range picked {
		choices = append(choices, strconv.Itoa(n))
	}
	return choices, choices[pos], nil
}

// uniform draws an integer in [0, n) without modulo bias.
func uniform(r io.Reader, n uint32) (int, error) {
	limit := (1<<32 - 1) / n * n
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		if v := binary.BigEndian.Uint32(b[:]); v < limit {
			return int(v % n), nil
		}
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
