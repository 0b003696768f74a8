package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

type pushListenFlags struct {
	pushFlags
	once bool
}

func (a *app) pushListenCmd() *cobra.Command {
	var f pushListenFlags
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Show sign-ins that ask for you and answer them (the terminal companion)",
		Long: `listen keeps a channel open to keyfleetd (reconnecting when it breaks) and
shows each push: who is signing in, to what, from where, and until when
you can answer. Type the number the sign-in screen shows (one of three),
d to deny it, or r if you did not start it: that refuses it, pauses your
pushes until an administrator looks, and raises an alert. Your answer is
signed with the device key; nothing you type is sent unsigned.`,
		Example: "  keyfleet-agent push listen\n  keyfleet-agent push listen --key ~/work-push.json --once",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.pushListen(cmd.Context(), f) },
	}
	f.pushFlags.register(cmd, false)
	cmd.Flags().BoolVar(&f.once, "once", false, "exit after answering one push")
	return cmd
}

func (a *app) pushListen(ctx context.Context, f pushListenFlags) error {
	c, dev, k, err := a.deviceClient(f.pushFlags)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan client.PushEvent)
	go streamForever(ctx, c, events, a.stderr)
	lines := make(chan string)
	go func() {
		defer close(lines)
		for {
			s, err := readLine()
			if err != nil {
				return
			}
			lines <- s
		}
	}()
	fmt.Fprintf(a.stdout, "Listening for sign-ins of %s (factor %s). For each, type the number the sign-in screen shows, d to deny it, or r if it was not you.\n", k.User, k.FactorID)
	l := &listener{out: a.stdout, dev: dev, c: c, fresh: map[string]bool{}}
	return l.run(ctx, events, lines, f.once)
}

// streamForever keeps the stream open, reconnecting with a growing pause
// (1 s to 30 s) when it breaks, and hands its events on.
func streamForever(ctx context.Context, c *client.Client, events chan<- client.PushEvent, stderr io.Writer) {
	pause := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := c.PushStream(ctx, idleStream, func(ev client.PushEvent) error {
			select {
			case events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			return
		}
		select { // what the next connection does not send again is gone
		case events <- client.PushEvent{Type: eventReconnecting}:
		case <-ctx.Done():
			return
		}
		if time.Since(start) > time.Minute {
			pause = time.Second
		}
		fmt.Fprintf(stderr, "keyfleet-agent: the channel to keyfleetd broke (%v); reconnecting in %s\n", err, pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// eventReconnecting is what streamForever says when the stream broke.
const eventReconnecting = "reconnecting"

// listener is the terminal companion's state: the pushes waiting for an
// answer, oldest first; the first is the one being asked.
type listener struct {
	out     io.Writer
	dev     *pushkind.Device
	c       *client.Client
	queue   []pushkind.Delivery
	fresh   map[string]bool // pushes the connection being opened has sent; nil once it is ready
	answers int
}

func (l *listener) run(ctx context.Context, events <-chan client.PushEvent, lines <-chan string, once bool) error {
	for {
		select {
		case ev := <-events:
			l.event(ev)
		case line, ok := <-lines:
			if !ok {
				return errors.New("standard input closed: nobody to answer pushes")
			}
			if l.answer(ctx, strings.TrimSpace(line)) && once {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (l *listener) event(ev client.PushEvent) {
	switch ev.Type {
	case "push":
		var d pushkind.Delivery
		if json.Unmarshal(ev.Data, &d) != nil || d.VerificationID == "" {
			return
		}
		if l.fresh != nil {
			l.fresh[d.VerificationID] = true
		}
		if !slices.ContainsFunc(l.queue, func(x pushkind.Delivery) bool { return x.VerificationID == d.VerificationID }) {
			l.queue = append(l.queue, d)
			if len(l.queue) == 1 {
				l.ask()
			} else {
				fmt.Fprintf(l.out, "Another sign-in waits: %s. Answer the one above first.\n", describe(d))
			}
		}
	case "closed":
		var cl struct {
			VerificationID string `json:"verification_id"`
			Outcome        string `json:"outcome"`
		}
		if json.Unmarshal(ev.Data, &cl) == nil {
			l.drop(func(d pushkind.Delivery) bool { return d.VerificationID == cl.VerificationID }, "closed ("+cl.Outcome+")")
		}
	case eventReconnecting:
		l.fresh = map[string]bool{}
	case "ready": // after a (re)connect: what keyfleetd no longer has is gone
		if l.fresh != nil {
			l.drop(func(d pushkind.Delivery) bool { return !l.fresh[d.VerificationID] }, "no longer waits")
		}
		l.fresh = nil
	}
}

// drop removes the pushes gone says, telling the user why.
func (l *listener) drop(gone func(pushkind.Delivery) bool, why string) {
	wasFirst := len(l.queue) > 0 && gone(l.queue[0])
	for _, d := range l.queue {
		if gone(d) {
			fmt.Fprintf(l.out, "The sign-in %s %s.\n", describe(d), why)
		}
	}
	l.queue = slices.DeleteFunc(l.queue, gone)
	if wasFirst && len(l.queue) > 0 {
		l.ask()
	}
}

func describe(d pushkind.Delivery) string {
	s := "of " + d.User
	if d.Application != "" {
		s += " to " + d.Application
	}
	if d.Address != "" {
		s += " from " + d.Address
	}
	return s
}

// ask shows the first waiting push.
func (l *listener) ask() {
	d := l.queue[0]
	fmt.Fprintf(l.out, "Sign-in request %s at %s (answer by %s).\n", describe(d), d.Time.Local().Format("15:04:05"), d.Deadline.Local().Format("15:04:05"))
	if len(d.Choices) > 0 {
		fmt.Fprintf(l.out, "Which number does the sign-in screen show? %s (d: deny, r: this wasn't me)\n", strings.Join(d.Choices, " / "))
		return
	}
	fmt.Fprintln(l.out, "Approve it? a: approve, d: deny, r: this wasn't me")
}

// answer signs and sends the user's answer to the first waiting push;
// it reports whether one was sent.
func (l *listener) answer(ctx context.Context, line string) bool {
	if len(l.queue) == 0 {
		if line != "" {
			fmt.Fprintln(l.out, "Nothing waits for an answer.")
		}
		return false
	}
	d := l.queue[0]
	number, decision, ok := parseAnswer(d, line)
	if !ok {
		l.ask()
		return false
	}
	l.queue = l.queue[1:]
	var out api.PushOutcome
	a, err := l.dev.Answer(d, number, decision, time.Now())
	if err == nil {
		out, err = l.c.AnswerPush(ctx, a)
	}
	l.report(out.Outcome, out.Reason, err)
	if len(l.queue) > 0 {
		l.ask()
	}
	return true
}

// parseAnswer reads a typed answer: one of the choices, a (without
// number matching), d or r.
func parseAnswer(d pushkind.Delivery, line string) (number, decision string, ok bool) {
	switch strings.ToLower(line) {
	case "d", "deny", "n", "no":
		return "", pushkind.Deny, true
	case "r", "report":
		return "", pushkind.Report, true
	case "a", "approve", "y", "yes":
		return "", pushkind.Approve, len(d.Choices) == 0
	}
	return line, pushkind.Approve, slices.Contains(d.Choices, line)
}

func (l *listener) report(outcome, reason string, err error) {
	switch {
	case client.IsProblem(err, "verification-closed"):
		fmt.Fprintln(l.out, "Too late: this push no longer waits (it ran out, or keyfleetd restarted since it was sent).")
	case err != nil:
		fmt.Fprintf(l.out, "Not sent: %v\n", err)
	case outcome == "approved":
		fmt.Fprintln(l.out, "Approved: the sign-in goes ahead.")
	case outcome == "reported":
		fmt.Fprintln(l.out, "Reported: the sign-in was refused, your pushes are paused until an administrator looks, and they are told.")
	default:
		fmt.Fprintf(l.out, "Refused: %s.\n", reason)
	}
}
