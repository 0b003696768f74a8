package web

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// qrCode is a QR code as one SVG path: rendered inline by the page, so the
// seed it carries never becomes a URL, a file or a cached image.
type qrCode struct {
	Size int    // modules per side, quiet zone included
	Path string // one "h1v1h-1z" square per dark module
}

// newQR encodes text (an otpauth:// URI) at medium error correction.
func newQR(text string) (qrCode, error) {
	if text == "" {
		return qrCode{}, fmt.Errorf("the authenticator kind returned no otpauth URI to show")
	}
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return qrCode{}, fmt.Errorf("making the QR code: %w", err)
	}
	bits := q.Bitmap()
	var b strings.Builder
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	return qrCode{Size: len(bits), Path: b.String()}, nil
}
