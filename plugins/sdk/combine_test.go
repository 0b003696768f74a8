package sdk

import (
	"errors"
	"sync"
	"testing"
)

// While one caller's message is on its way, the items others add go out
// together in the next message, sent by that same caller; nobody waits
// for a goroutine of the combiner's own.
func TestItemsAddedDuringASendGoOutTogetherInTheNext(t *testing.T) {
	inSend := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	var sent [][]int
	c := newCombiner(func(b []int) error {
		mu.Lock()
		sent = append(sent, b)
		first := len(sent) == 1
		mu.Unlock()
		if first {
			close(inSend)
			<-release
		}
		return nil
	})
	done := make(chan error)
	go func() { done <- c.add(0) }()
	<-inSend
	for i := 1; i <= 3; i++ {
		if err := c.add(i); err != nil { // returns at once: the first caller sends it
			t.Fatal(err)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || len(sent[0]) != 1 || len(sent[1]) != 3 {
		t.Fatalf("messages sent: %v, want [[0] [1 2 3]]", sent)
	}
}

// A failed send stops the stream: later items are refused with its
// error, and after close nothing is sent at all.
func TestAFailedOrClosedCombinerSendsNothingMore(t *testing.T) {
	broken := errors.New("broken pipe")
	tests := []struct {
		name    string
		sendErr error
		close   error
		want    error
	}{
		{"a send fails", broken, nil, broken},
		{"the stream is closed", nil, errHungUp, errHungUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sends := 0
			c := newCombiner(func([]int) error { sends++; return tt.sendErr })
			if tt.close != nil {
				c.close(tt.close)
			} else if err := c.add(1); !errors.Is(err, tt.want) {
				t.Fatalf("the failing send returned %v", err)
			}
			before := sends
			if err := c.add(2); !errors.Is(err, tt.want) {
				t.Fatalf("an item after it returned %v, want %v", err, tt.want)
			}
			if sends != before {
				t.Fatal("an item was sent after the stream stopped")
			}
		})
	}
}
