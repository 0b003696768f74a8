package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// stdin is where PINs and "press Enter" answers come from; tests replace
// it. A terminal is read without echo; anything else line by line.
var (
	stdin  io.Reader = os.Stdin
	lineIn *bufio.Reader
)

func readLine() (string, error) {
	if lineIn == nil {
		lineIn = bufio.NewReader(stdin)
	}
	s, err := lineIn.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no answer: standard input is closed")
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// readSecret asks for a PIN on stderr and reads it without echo. The PIN
// is never printed, logged or put in an error.
func readSecret(stderr io.Writer, prompt string) (string, error) {
	fmt.Fprint(stderr, prompt)
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading the PIN: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	s, err := readLine()
	fmt.Fprintln(stderr)
	return strings.TrimSpace(s), err
}

// newPIN asks for a new PIN twice.
func newPIN(stderr io.Writer, what string) (string, error) {
	a, err := readSecret(stderr, "New "+what+" PIN: ")
	if err != nil {
		return "", err
	}
	b, err := readSecret(stderr, "Repeat the new "+what+" PIN: ")
	if err != nil {
		return "", err
	}
	if a != b {
		return "", errors.New("the two PINs differ: run the command again")
	}
	return a, nil
}

// touchPrompt tells the user the key is waiting.
func touchPrompt(stderr io.Writer) func() {
	return func() { fmt.Fprintln(stderr, "Touch your key now (it blinks).") }
}
