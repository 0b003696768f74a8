package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
)

type totpOpts struct {
	user, label, code string
	server, ca        string
	params            totpParams
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

func (a *app) addTOTPCmd() *cobra.Command {
	var o totpOpts
	cmd := &cobra.Command{
		Use:   "add-totp [--user NAME | --code CODE] [--label TEXT] [--algorithm SHA256] [--digits 8] [--period 60]",
		Short: "Add an authenticator app: shows a QR code, then asks for the first code it shows",
		Long: `add-totp enrols a TOTP authenticator app. It prints a QR code (and the seed,
for apps that cannot scan) once, then asks for the code the app shows: the
factor exists only after that code proves the app has the seed.

Without --user it enrols for you. When your account has a factor already,
adding one needs a fresh proof with it: your security key through
keyfleet-agent, or the code of an authenticator app you have (asked here).

The seed is shown only to the person who will hold the app. With --user
for someone else, add-totp prints an enrolment code instead (when your role
may hand one out): give it to them over a trusted channel, and they run
'keyfleet factors add-totp --code CODE' (no login needed: the code is the
credential; --server and --ca say where keyfleetd is).

The app's algorithm, code length and time step are what the policy asks
(SHA1, 6 digits, 30 s when it asks nothing); --algorithm, --digits and
--period ask for others within what the policy accepts. Not every app
honours them: check that the codes it shows have the length printed.`,
		Example: `  keyfleet factors add-totp --label "work phone"
  keyfleet factors add-totp --user alice
  keyfleet factors add-totp --code enr_06h…. --server https://keyfleet.example.com
  keyfleet factors add-totp --algorithm SHA256 --digits 8 --period 60`,
		Args: argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.code != "" {
				if o.user != "" {
					return usagef("give --user or --code, not both: the code names its user")
				}
				return a.addTOTPWithCode(cmd, o)
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				me, err := c.Me(ctx)
				if err != nil {
					return err
				}
				if o.user == "" {
					o.user = me.User.ID
				}
				return a.addTOTP(ctx, c, me, o)
			})
		},
	}
	cmd.Flags().StringVar(&o.user, "user", "", "whose app (default you)")
	cmd.Flags().StringVar(&o.label, "label", "", "a name for the factor, like \"work phone\"")
	cmd.Flags().StringVar(&o.code, "code", "", "an enrolment code someone made for you (- asks for it without echo)")
	cmd.Flags().StringVar(&o.server, "server", "", "with --code: keyfleetd's URL (default $KEYFLEET_SERVER, else the saved login's)")
	cmd.Flags().StringVar(&o.ca, "ca", "", "with --code: keyfleetd's certificate (default $KEYFLEET_CA, else the saved login's)")
	cmd.Flags().StringVar(&o.params.algorithm, "algorithm", "", "SHA1, SHA256 or SHA512 (default: what the policy asks)")
	cmd.Flags().StringVar(&o.params.digits, "digits", "", "code length, 6 or 8 (default: what the policy asks)")
	cmd.Flags().StringVar(&o.params.period, "period", "", "time step in seconds, 15 to 120 (default: what the policy asks)")
	return cmd
}

// addTOTP creates the enrolment (proved when it adds to one's own
// account) and completes it when the caller will hold the app.
func (a *app) addTOTP(ctx context.Context, c *client.Client, me api.Me, o totpOpts) error {
	in := api.CreateEnrolment{User: o.user, Kind: "totp", Options: o.params.options()}
	var en api.Enrolment
	err := a.withProof(ctx, c, userProof(actFactorAdd, o.user, in), func(c *client.Client) error {
		var err error
		en, err = c.CreateEnrolment(ctx, in)
		return err
	})
	if err != nil {
		return err
	}
	if en.UserID != me.User.ID {
		return a.handOverTOTP(en)
	}
	return a.scanAndComplete(ctx, c, en, o.label)
}

// handOverTOTP tells the creator of someone else's TOTP enrolment how its
// user gets the seed, which only they see.
func (a *app) handOverTOTP(en api.Enrolment) error {
	if err := a.printEnrolment(en); err != nil {
		return err
	}
	if en.Code == "" {
		a.note("The seed is shown only to the user. Your role may not hand out an enrolment code: ask an administrator or enroller for one, or let the user add the app themselves.")
		return nil
	}
	a.codeHint(en)
	return nil
}

// addTOTPWithCode redeems an enrolment code for a TOTP app and completes
// it with the redeemed token: the seed goes to the code's holder.
func (a *app) addTOTPWithCode(cmd *cobra.Command, o totpOpts) error {
	code := o.code
	if code == "-" {
		var err error
		if code, err = a.askSecret("Enrolment code: "); err != nil {
			return err
		}
	}
	anon, cfg, err := a.anonClient(o.server, o.ca)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	red, err := anon.RedeemEnrolmentCode(ctx, code)
	if err != nil {
		return fail(fmt.Errorf("redeeming the enrolment code: %w", err), "ask for a new code if it was used or has expired")
	}
	if red.Enrolment.Kind != "totp" {
		return fail(fmt.Errorf("this enrolment code is for a %s factor, not an authenticator app", red.Enrolment.Kind),
			"enrol that key with: keyfleet-agent enroll --code CODE")
	}
	c, err := client.New(client.Config{Server: cfg.Server, Token: red.Token, CAPEM: []byte(cfg.CAPEM), UserAgent: userAgent})
	if err != nil {
		return usagef("%w", err)
	}
	return a.scanAndComplete(ctx, c, red.Enrolment, o.label)
}

// scanAndComplete shows the seed, asks for the app's first code and
// completes the enrolment.
func (a *app) scanAndComplete(ctx context.Context, c *client.Client, en api.Enrolment, label string) error {
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
	line, err := readLine(a.stdin)
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
