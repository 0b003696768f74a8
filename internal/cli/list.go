package cli

import (
	"context"

	"github.com/keyfleet/keyfleet/api"
	"github.com/spf13/cobra"
)

// listOpts are the paging flags every list command has.
type listOpts struct {
	limit  int
	cursor string
	all    bool
}

// maxPage is the page size the CLI asks for.
const maxPage = 500

func addListFlags(cmd *cobra.Command, o *listOpts) {
	cmd.Flags().IntVar(&o.limit, "limit", 100, "show at most this many")
	cmd.Flags().StringVar(&o.cursor, "cursor", "", "start where a previous, truncated list stopped")
	cmd.Flags().BoolVar(&o.all, "all", false, "show everything, however long")
}

// pageFunc fetches one page starting at cursor, of at most limit items.
type pageFunc[T any] func(ctx context.Context, cursor string, limit int) (api.Page[T], error)

// collect follows cursors until it has o.limit items (all of them with
// --all) and returns them with the cursor of what remains, if anything.
func collect[T any](ctx context.Context, o listOpts, fetch pageFunc[T]) ([]T, string, error) {
	if o.limit <= 0 && !o.all {
		return nil, "", usagef("--limit must be positive")
	}
	items, cursor := []T{}, o.cursor
	for {
		n := maxPage
		if !o.all {
			n = min(n, o.limit-len(items))
		}
		pg, err := fetch(ctx, cursor, n)
		if err != nil {
			return nil, "", err
		}
		if !o.all && len(pg.Items) > o.limit-len(items) {
			// The daemon sent more than asked; keep the contract.
			pg.Items = pg.Items[:o.limit-len(items)]
		}
		items = append(items, pg.Items...)
		cursor = pg.NextCursor
		if cursor == "" || len(pg.Items) == 0 || (!o.all && len(items) >= o.limit) {
			return items, cursor, nil
		}
	}
}

// printList prints items as a JSON array or a table, and says on stderr
// how to see the rest when the list was cut short.
func printList[T any](a *app, items []T, next, noun string, header []string, row func(T) []string) error {
	err := a.emit(items, func() error {
		rows := make([][]string, len(items))
		for i, it := range items {
			rows[i] = row(it)
		}
		return a.rows(header, rows)
	})
	if err == nil && next != "" {
		a.note("note: more %s remain; add --cursor %s to see the next ones, or --all", noun, next)
	}
	return err
}
