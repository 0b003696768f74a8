package pam

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The wire between pam_keyfleet.so and the helper (pam/module): frames of
// one letter, a space, the payload's length in decimal, a newline, the
// payload and a newline.
const (
	frameUser    = 'U' // module → helper: PAM_USER
	frameService = 'S' // PAM_SERVICE
	frameRHost   = 'R' // PAM_RHOST
	frameTTY     = 'T' // PAM_TTY
	frameEnd     = 'E' // end of the above
	frameAnswer  = 'A' // the answer to a prompt
	frameNone    = 'X' // the conversation gave no answer

	framePromptOff = 'P' // helper → module: a prompt, echo off
	framePromptOn  = 'Q' // a prompt, echo on
	frameInfo      = 'I' // PAM_TEXT_INFO
	frameError     = 'M' // PAM_ERROR_MSG
	frameDone      = 'D' // the result's name
)

// maxFrame bounds a payload; the module refuses longer ones too.
const maxFrame = 65536

// ErrNoAnswer: the person (or the application) gave no answer to a prompt.
var ErrNoAnswer = errors.New("no answer to the prompt")

// wire is the helper's end: it reads the module's frames from r and
// writes its own to w. It is the Conversation the decision runs with.
type wire struct {
	r *bufio.Reader
	w io.Writer
}

func newWire(r io.Reader, w io.Writer) *wire { return &wire{r: bufio.NewReader(r), w: w} }

func (c *wire) send(typ byte, payload string) error {
	if len(payload) > maxFrame {
		payload = payload[:maxFrame]
	}
	_, err := fmt.Fprintf(c.w, "%c %d\n%s\n", typ, len(payload), payload)
	return err
}

func (c *wire) read() (byte, string, error) {
	head, err := c.r.ReadString('\n')
	if err != nil {
		return 0, "", fmt.Errorf("reading from pam_keyfleet.so: %w", err)
	}
	typ, size, ok := strings.Cut(strings.TrimSuffix(head, "\n"), " ")
	n, err := strconv.Atoi(size)
	if !ok || len(typ) != 1 || err != nil || n < 0 || n > maxFrame {
		return 0, "", fmt.Errorf("pam_keyfleet.so sent a bad frame header %q", head)
	}
	b := make([]byte, n+1)
	if _, err := io.ReadFull(c.r, b); err != nil || b[n] != '\n' {
		return 0, "", fmt.Errorf("pam_keyfleet.so sent a short frame")
	}
	return typ[0], string(b[:n]), nil
}

// readLogin reads who signs in, up to the end frame.
func (c *wire) readLogin() (Login, error) {
	var in Login
	for {
		typ, payload, err := c.read()
		if err != nil {
			return in, err
		}
		switch typ {
		case frameUser:
			in.User = payload
		case frameService:
			in.Service = payload
		case frameRHost:
			in.RHost = payload
		case frameTTY:
			in.TTY = payload
		case frameEnd:
			return in, nil
		default:
			return in, fmt.Errorf("pam_keyfleet.so sent frame %q before the end of the login", typ)
		}
	}
}

// Prompt asks the person and returns the answer.
func (c *wire) Prompt(echo bool, text string) (string, error) {
	typ := byte(framePromptOff)
	if echo {
		typ = framePromptOn
	}
	if err := c.send(typ, text); err != nil {
		return "", err
	}
	got, payload, err := c.read()
	switch {
	case err != nil:
		return "", err
	case got == frameNone:
		return "", ErrNoAnswer
	case got != frameAnswer:
		return "", fmt.Errorf("pam_keyfleet.so answered a prompt with frame %q", got)
	}
	return payload, nil
}

// Info shows a message.
func (c *wire) Info(text string) error { return c.send(frameInfo, text) }

// Error shows an error message.
func (c *wire) Error(text string) error { return c.send(frameError, text) }

func (c *wire) done(r Result) error { return c.send(frameDone, string(r)) }
