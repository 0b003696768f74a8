package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealedSecretsOpenOnlyForTheirOwnerAndKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	secret := []byte("JBSWY3DPEHPK3PXP")
	blob, err := s.Seal(secret, []byte("fac_1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, secret) {
		t.Fatal("sealed blob contains the plaintext")
	}
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		sealer *Sealer
		blob   []byte
		aad    string
		ok     bool
	}{
		{"the right key and owner open it", s, blob, "fac_1", true},
		{"another owner cannot open it", s, blob, "fac_2", false},
		{"another key cannot open it", other, blob, "fac_1", false},
		{"a flipped bit is refused", s, flipped, "fac_1", false},
		{"a truncated blob is refused", s, blob[:10], "fac_1", false},
		{"an unknown version is refused", s, append([]byte{9}, blob[1:]...), "fac_1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open(tt.blob, []byte(tt.aad))
			if tt.ok {
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("Open = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open error = %v, want ErrOpen", err)
			}
		})
	}
}

func TestSealingTwiceGivesDifferentBlobs(t *testing.T) {
	s, _ := New(make([]byte, KeySize))
	a, _ := s.Seal([]byte("x"), nil)
	b, _ := s.Seal([]byte("x"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same secret are identical: the nonce is not random")
	}
}

func TestNewRefusesAShortKey(t *testing.T) {
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
}

func TestACheckValueOpensOnlyUnderItsKey(t *testing.T) {
	a, _ := New(bytes.Repeat([]byte{1}, KeySize))
	b, _ := New(bytes.Repeat([]byte{2}, KeySize))
	v, err := a.CheckValue()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(v); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(v); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("another key opened the check value: %v", err)
	}
	v[len(v)-1] ^= 1
	if err := a.Check(v); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("a damaged check value passed: %v", err)
	}
}
