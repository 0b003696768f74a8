package cli

import (
	"context"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

type tailOpts struct {
	interval time.Duration
	after    uint64
	lines    int
	fromHead bool
}

// tail prints recent events, then polls for new ones until ctx ends,
// which is a normal end, not an error.
func (a *app) tail(ctx context.Context, c *client.Client, o tailOpts) error {
	after := o.after
	if o.fromHead {
		recent, head, err := lastEvents(ctx, c, o.lines)
		if err != nil {
			return quietCancel(ctx, err)
		}
		for _, e := range recent {
			if err := a.printEventLine(e); err != nil {
				return err
			}
		}
		after = head
	}
	t := time.NewTicker(o.interval)
	defer t.Stop()
	lost := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next, err := a.printSince(ctx, c, after)
		after = next
		switch {
		case err == nil:
			if lost {
				a.note("note: reached keyfleetd again")
			}
			lost = false
		case ctx.Err() != nil:
			return nil
		case client.IsUnreachable(err):
			if !lost {
				a.note("warning: %v; retrying every %s", err, o.interval)
			}
			lost = true
		default:
			return err
		}
	}
}

func quietCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// printSince prints every event after seq and returns the last printed
// sequence number (seq if none).
func (a *app) printSince(ctx context.Context, c *client.Client, seq uint64) (uint64, error) {
	for {
		start := seq
		pg, err := c.ListAudit(ctx, client.AuditFilter{After: seq, Limit: maxPage})
		if err != nil {
			return seq, err
		}
		for _, e := range pg.Items {
			if e.Seq <= seq {
				continue // never print an event twice
			}
			if err := a.printEventLine(e); err != nil {
				return seq, err
			}
			seq = e.Seq
		}
		if _, more := client.NextAfter(pg); !more || seq == start {
			return seq, nil
		}
	}
}

// lastEvents returns the last n events and the head's sequence number.
func lastEvents(ctx context.Context, c *client.Client, n int) ([]api.AuditEvent, uint64, error) {
	head, err := c.AuditHead(ctx)
	if err != nil {
		return nil, 0, err
	}
	after := uint64(0)
	if head.Seq > uint64(max(n, 0)) {
		after = head.Seq - uint64(n)
	}
	var recent []api.AuditEvent
	for after < head.Seq {
		pg, err := c.ListAudit(ctx, client.AuditFilter{After: after, Limit: maxPage})
		if err != nil || len(pg.Items) == 0 {
			return recent, head.Seq, err
		}
		recent = append(recent, pg.Items...)
		after = pg.Items[len(pg.Items)-1].Seq
	}
	return recent, head.Seq, nil
}
