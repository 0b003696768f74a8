package cli

import (
	"context"
	"sync"

	"github.com/keyfleet/keyfleet/api/client"
)

// userNames maps user ids to usernames for tables, which name people,
// not ids: one GET /v1/users/{id} per distinct id (a few at a time). An
// id the caller may not read (a user reading their own records sees only
// themselves) or that no longer exists stays an id.
func userNames(ctx context.Context, c *client.Client, ids []string) map[string]string {
	names := map[string]string{}
	var distinct []string
	for _, id := range ids {
		if _, seen := names[id]; id != "" && !seen {
			names[id] = id
			distinct = append(distinct, id)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, id := range distinct {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u, err := c.GetUser(ctx, id)
			if err != nil || u.Username == "" {
				return
			}
			mu.Lock()
			names[id] = u.Username
			mu.Unlock()
		}()
	}
	wg.Wait()
	return names
}

// named returns the username for id from names, or "-" for none.
func named(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return n
	}
	return dash(id)
}

// idsOf collects the user ids of items.
func idsOf[T any](items []T, id func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

// names resolves usernames for a table; -o json prints the API's records
// as they are and needs none.
func (a *app) names(ctx context.Context, c *client.Client, ids []string) map[string]string {
	if a.jsonOutput() {
		return nil
	}
	return userNames(ctx, c, ids)
}
