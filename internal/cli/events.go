package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

func (a *app) eventsCmd() *cobra.Command {
	cmd := group("events", "The event sinks that stream the audit log to logging systems",
		"  keyfleet events status\n  keyfleet events replay --sink siem --from 1200")
	cmd.AddCommand(a.eventsStatusCmd(), a.eventsReplayCmd())
	return cmd
}

func (a *app) eventsStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "Show each sink's lag, last delivered event and last error", Args: argNames(),
		Example: "  keyfleet events status\n  keyfleet events status -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				sinks, err := c.EventSinks(ctx)
				if err != nil {
					return err
				}
				return printList(a, sinks, "", "sinks",
					[]string{"SINK", "TYPE", "DELIVERED UP TO", "HEAD", "LAG", "DEAD LETTERS", "LAST ERROR"},
					func(s api.SinkStatus) []string {
						return []string{s.Name, s.Type, fmt.Sprint(s.LastDelivered), fmt.Sprint(s.Head), fmt.Sprint(s.Lag),
							fmt.Sprint(s.DeadLetters), dash(s.LastError)}
					})
			})
		},
	}
}

func (a *app) eventsReplayCmd() *cobra.Command {
	var sink string
	var from uint64
	cmd := &cobra.Command{
		Use: "replay --sink NAME --from SEQ", Short: "Deliver a sink's events again from a sequence number (audited)",
		Example: "  keyfleet events replay --sink siem --from 1200",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sink == "" || from == 0 {
				return usagef("--sink and --from are required")
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.ReplaySink(ctx, sink, from)
				if err != nil {
					return err
				}
				return a.emit(st, func() error {
					a.note("sink %s will deliver again from seq %d (head %d)", sink, from, st.Head)
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVar(&sink, "sink", "", "the sink's name")
	cmd.Flags().Uint64Var(&from, "from", 0, "the first sequence number to deliver again")
	return cmd
}
