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
	var p totpParams
	cmd := &cobra.Command{
		Use:   "add-totp [--user NAME] [--label TEXT] [--algorithm SHA256] [--digits 8] [--period 60]",
		Short: "Add an authenticator app: shows a QR code, then asks for the first code it shows",
		Long: `add-totp enrols a TOTP authenticator app. It prints a QR code (and the seed,
for apps that cannot scan) once, then asks for the code the app shows: the
factor exists only after that code proves the app has the seed. Without
--user it enrols for you.

The app's algorithm, code length and time step are what the policy asks
(SHA1, 6 digits, 30 s when it asks nothing); --algorithm, --digits and
--period ask for others within what the policy accepts. Not every app
honours them: check that the codes it shows have the length printed.`,
		Example: "  keyfleet factors add-totp\n  keyfleet factors add-totp --user alice --label \"work phone\"\n" +
			"  keyfleet factors add-totp --algorithm SHA256 --digits 8 --period 60",
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if user == "" {
					me, err := c.Me(ctx)
					if err != nil {
						return err
					}
					user = me.User.Username
				}
				return a.addTOTP(ctx, c, user, label, p.options())
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "whose app (default you)")
	cmd.Flags().StringVar(&label, "label", "", "a name for the factor, like \"work phone\"")
	cmd.Flags().StringVar(&p.algorithm, "algorithm", "", "SHA1, SHA256 or SHA512 (default: what the policy asks)")
	cmd.Flags().StringVar(&p.digits, "digits", "", "code length, 6 or 8 (default: what the policy asks)")
	cmd.Flags().StringVar(&p.period, "period", "", "time step in seconds, 15 to 120 (default: what the policy asks)")
	return cmd
}

// totpParams are the TOTP parameters asked for on the command line.
type totpParams struct{ algorithm, digits, period string }

func (p totpParams) options() map[string]string {
	out := map[string]string{}
	for k, v := range map[string]string{"algorithm": p.algorithm, "digits": p.digits, "period": p.period} {
		if v != "" {
			out[k] = strings.TrimSuffix(v, "s")
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (a *app) addTOTP(ctx context.Context, c *client.Client, user, label string, opts map[string]string) error {
	en, err := c.CreateEnrolment(ctx, api.CreateEnrolment{User: user, Kind: "totp", Options: opts})
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
	if p := totpParamsOf(en.Params); p != "" {
		fmt.Fprintf(a.stdout, "The app must make %s.\n", p)
	}
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

// totpParamsOf says what codes the enrolment asks of the app: "8-digit
// codes with SHA256 every 60 s"; "" when the parameters are not given.
func totpParamsOf(raw json.RawMessage) string {
	var p struct{ Algorithm, Digits, Period string }
	if json.Unmarshal(raw, &p) != nil || p.Algorithm == "" || p.Digits == "" || p.Period == "" {
		return ""
	}
	return fmt.Sprintf("%s-digit codes with %s every %s s", p.Digits, p.Algorithm, p.Period)
}
