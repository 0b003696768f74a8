package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

func (a *app) addTOTPCmd() *cobra.Command {
	var user, label string
	cmd := &cobra.Command{
		Use:   "add-totp [--user NAME] [--label TEXT]",
		Short: "Add an authenticator app: shows a QR code, then asks for the first code it shows",
		Long: `add-totp enrols a TOTP authenticator app. It prints a QR code (and the seed,
for apps that cannot scan) once, then asks for the code the app shows: the
factor exists only after that code proves the app has the seed. Without
--user it enrols for you.`,
		Example: "  keyfleet factors add-totp\n  keyfleet factors add-totp --user alice --label \"work phone\"",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if user == "" {
					me, err := c.Me(ctx)
					if err != nil {
						return err
					}
					user = me.User.Username
				}
				return a.addTOTP(ctx, c, user, label)
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "whose app (default you)")
	cmd.Flags().StringVar(&label, "label", "", "a name for the factor, like \"work phone\"")
	return cmd
}

func (a *app) addTOTP(ctx context.Context, c *client.Client, user, label string) error {
	en, err := c.CreateEnrolment(ctx, api.CreateEnrolment{User: user, Kind: "totp"})
	if err != nil {
		return err
	}
	uri := en.Display["uri"]
	if uri == "" {
		return fmt.Errorf("keyfleetd's totp kind returned no otpauth URI; is the TOTP plugin current?")
	}
	qr, err := qrcode.New(uri, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("drawing the QR code: %w", err)
	}
	fmt.Fprintf(a.stdout, "Scan this with the authenticator app (shown once):\n\n%s\n", qr.ToSmallString(false))
	fmt.Fprintf(a.stdout, "Or type the seed: %s\n\nCode the app shows now: ", en.Display["secret"])
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	code := strings.TrimSpace(line)
	if code == "" {
		_, _ = c.CancelEnrolment(ctx, en.ID)
		return usagef("no code given (%v); run add-totp again", err)
	}
	payload, _ := json.Marshal(map[string]string{"code": code})
	f, err := c.CompleteEnrolment(ctx, en.ID, api.CompleteEnrolment{Label: label, Payload: payload})
	if err != nil {
		return fail(err, "check the phone's clock and try the next code with 'keyfleet factors add-totp' again")
	}
	a.note("authenticator app added as factor %s", f.ID)
	if err := a.printFactor(f); err != nil {
		return err
	}
	if len(f.RecoveryCodes) > 0 && !a.jsonOutput() {
		fmt.Fprintf(a.stdout, "\nThis is the first factor: keep these recovery codes somewhere safe, each works once:\n\n  %s\n", strings.Join(f.RecoveryCodes, "\n  "))
	}
	return nil
}
