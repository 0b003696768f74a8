package jsonw

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// Any string and any time are written as encoding/json writes them, or
// (a time it does not take) left to it.
func FuzzAppendIsWhatEncodingJSONWrites(f *testing.F) {
	for _, s := range []string{"", "plain", `" \ < > &`, "\t\n\r\x00\x1f\x7f\b\f", "é 日本 🔑", "\u2028\u2029", "\xff\xfe"} {
		f.Add(s, int64(len(s))*1e15+123, int32(0))
	}
	f.Add("", int64(-9_000_000_000_000_000_000), int32(3600))
	f.Fuzz(func(t *testing.T, s string, nanos int64, offset int32) {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
		tm := time.Unix(0, nanos).In(time.FixedZone("", int(offset%100_000)))
		want, err := json.Marshal(tm)
		got, ok := AppendTime(nil, tm)
		if ok && (err != nil || !bytes.Equal(got, want)) {
			t.Errorf("%v: %s, want %s (%v)", tm, got, want, err)
		}
		if _, off := tm.Zone(); !ok && off == 0 && err == nil {
			t.Errorf("%v in UTC left to encoding/json", tm)
		}
	})
}
