// Package csvsafe writes CSV that a spreadsheet opens as data only. A cell
// that begins with = + - @, a tab or a carriage return is read as a
// formula by Excel, LibreOffice and Google Sheets ("CSV injection", OWASP),
// so a group name, a key's model string or an error message could run a
// formula on the machine of whoever opens a report. Such cells are written
// with a leading single quote, which spreadsheets show as text and do not
// evaluate. Plain numbers ("-3", "+1.5") and a lone "-" are left alone:
// they are not formulas.
package csvsafe

import (
	"encoding/csv"
	"io"
	"regexp"
)

// Cell returns s as it is safe to write in a CSV cell.
func Cell(s string) string {
	if s == "" || s == "-" || number.MatchString(s) {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

var number = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]+)?$`)

// Writer is a csv.Writer that passes every cell through [Cell].
type Writer struct{ w *csv.Writer }

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{csv.NewWriter(w)} }

// Write writes one record.
func (w *Writer) Write(record []string) error {
	safe := make([]string, len(record))
	for i, c := range record {
		safe[i] = Cell(c)
	}
	return w.w.Write(safe)
}

// WriteAll writes records and flushes.
func (w *Writer) WriteAll(records [][]string) error {
	for _, r := range records {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	w.w.Flush()
	return w.w.Error()
}

// Flush writes any buffered data.
func (w *Writer) Flush() { w.w.Flush() }

// Error reports any error from a previous Write or Flush.
func (w *Writer) Error() error { return w.w.Error() }
