package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/api/client"
	pushkind "github.com/keyfleet/keyfleet/plugins/push"
)

// A companion's device signs its requests to keyfleetd.
var _ client.DeviceSigner = (*pushkind.Device)(nil)

// pushFlags are what push's subcommands share: where keyfleetd is and
// where the device key lives.
type pushFlags struct {
	connFlags
	keyFile string
}

func (f *pushFlags) register(cmd *cobra.Command, withToken bool) {
	f.connFlags.register(cmd.Flags(), withToken)
	cmd.Flags().StringVar(&f.keyFile, "key", "", "file holding this companion's device key (default $XDG_CONFIG_HOME/keyfleet/push.json, else ~/.config/keyfleet/push.json)")
}

func (a *app) pushCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "push",
		Short: "Approve sign-ins on this desktop: a push companion (enroll, then listen)",
		Long: `push makes this desktop a push companion. 'keyfleet-agent push enroll' makes a
P-256 device key (kept in --key, mode 0600, never sent anywhere) and
registers its public half with keyfleetd as a push factor; 'keyfleet-agent
push listen' keeps a channel open to keyfleetd, shows each sign-in that
asks for you (who, to what, from where) and signs your answer: the number
the sign-in screen shows, a deny, or "this wasn't me".`,
		Args: unknownSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.pushEnrollCmd(), a.pushListenCmd())
	return cmd
}

type pushEnrollFlags struct {
	pushFlags
	keyFlags
	name, code, timeout, pinFile string
	noNumbers, force             bool
}

func (a *app) pushEnrollCmd() *cobra.Command {
	var f pushEnrollFlags
	cmd := &cobra.Command{
		Use:     "enroll [--name NAME] [--code CODE]",
		Aliases: []string{"enrol"},
		Short:   "Register this desktop as a push companion",
		Long: `enroll makes a device key and registers it as a push factor of yours. With
your own token (keyfleet login), and a factor already, adding one needs a
fresh proof with it: your security key (--soft-fido2, --reader …; its PIN
is asked, or read from --pin-file) or your authenticator app's code. With
--code, it completes a push enrolment an administrator opened for you
instead (no token needed).

The enrolment is confirmed by the key's first signed answer; the key file
holds the private key, the server and the factor: keep it private.`,
		Example: `  keyfleet-agent push enroll --name "work laptop"
  keyfleet-agent push enroll --code enr_… --server https://keyfleet.example.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.pushEnroll(cmd.Context(), f) },
	}
	f.pushFlags.register(cmd, true)
	f.keyFlags.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&f.name, "name", "", "a name for this companion (default: keyfleet-agent on HOSTNAME)")
	fs.StringVar(&f.code, "code", "", "an enrolment code an administrator made for your push factor (- asks for it)")
	fs.StringVar(&f.timeout, "timeout", "", "seconds to answer a push, 15 to 300 (default: the policy's, else 60)")
	fs.BoolVar(&f.noNumbers, "no-number-matching", false, "approve without picking a number (the policy may refuse it)")
	fs.StringVar(&f.pinFile, "pin-file", "", "file whose first line is your security key's PIN, for the proof")
	fs.BoolVar(&f.force, "force", false, "replace the key file if there is one")
	return cmd
}

// pushEnroll opens (or redeems) the enrolment, makes the device key,
// confirms the enrolment with its first signature and saves the key.
func (a *app) pushEnroll(ctx context.Context, f pushEnrollFlags) error {
	path, err := pushKeyPath(f.keyFile, a.getenv)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil && !f.force {
		return fmt.Errorf("%s holds a device key already; give another --key, or --force to replace it (the old factor stays until you remove it)", path)
	}
	d, en, user, err := a.pushEnrolment(ctx, f)
	if err != nil {
		return err
	}
	var params map[string]string
	if err := json.Unmarshal(en.Params, &params); err != nil || params["nonce"] == "" {
		return fmt.Errorf("enrolment %s is not a push enrolment keyfleet-agent can answer (no nonce); is keyfleet-plugin-push current?", en.ID)
	}
	dev, err := pushkind.NewDevice(nil)
	if err != nil {
		return err
	}
	name := firstOf(f.name, defaultCompanionName())
	resp, err := dev.Enrol(en.ID, params["nonce"], name, "file")
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(resp)
	fac, err := d.CompleteEnrolment(ctx, en.ID, api.CompleteEnrolment{Label: name, Payload: payload})
	if err != nil {
		return fmt.Errorf("confirming the enrolment: %w", err)
	}
	dev.FactorID = fac.ID
	if err := savePushKey(path, pushKeyFile{Server: d.Server(), FactorID: fac.ID, User: user, Key: dev.Key}); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "push companion %q registered for %s as factor %s; key in %s\n", name, user, fac.ID, path)
	fmt.Fprintln(a.stdout, "Run 'keyfleet-agent push listen' to answer sign-ins.")
	return nil
}

// pushEnrolment opens the enrolment with the caller's token (proved when
// the account has a factor), or redeems an enrolment code.
func (a *app) pushEnrolment(ctx context.Context, f pushEnrollFlags) (*client.Client, api.Enrolment, string, error) {
	if f.code != "" {
		return a.redeemPushCode(ctx, f)
	}
	d, err := a.daemonClient(f.connFlags)
	if err != nil {
		return nil, api.Enrolment{}, "", err
	}
	me, err := d.Me(ctx)
	if err != nil {
		return nil, api.Enrolment{}, "", err
	}
	in := api.CreateEnrolment{User: me.User.ID, Kind: pushkind.Kind, Options: pushOptions(f)}
	en, err := d.CreateEnrolment(ctx, in)
	if client.IsProofRequired(err) {
		var proof api.Proof
		if proof, err = a.proveAdding(ctx, d, me.User.ID, in, f); err != nil {
			return nil, api.Enrolment{}, "", err
		}
		en, err = d.WithProof(proof).CreateEnrolment(ctx, in)
	}
	if err != nil {
		return nil, api.Enrolment{}, "", fmt.Errorf("opening the push enrolment: %w", err)
	}
	return d, en, me.User.Username, nil
}

func pushOptions(f pushEnrollFlags) map[string]string {
	opts := map[string]string{}
	if f.timeout != "" {
		opts["timeout"] = strings.TrimSuffix(f.timeout, "s")
	}
	if f.noNumbers {
		opts["number_matching"] = "false"
	}
	if len(opts) == 0 {
		return nil
	}
	return opts
}

// proveAdding answers a factor.add proof for the enrolment with the
// person's key (or authenticator app).
func (a *app) proveAdding(ctx context.Context, d *client.Client, userID string, in api.CreateEnrolment, f pushEnrollFlags) (api.Proof, error) {
	body, _ := json.Marshal(in)
	ch, err := d.BeginProof(ctx, api.ProofRequest{Action: "factor.add", Subject: userID, Request: body})
	if err != nil {
		return api.Proof{}, fmt.Errorf("asking for a proof to add the push factor: %w", err)
	}
	fmt.Fprintf(a.stderr, "You are proving: %s\n", ch.Summary)
	asker, closeAsk := a.asker(proveFlags{keyFlags: f.keyFlags, pinFile: f.pinFile, challenge: "file"})
	defer closeAsk()
	p, err := a.answerProof(ch, proveFlags{keyFlags: f.keyFlags, pinFile: f.pinFile}, asker)
	if err != nil {
		return api.Proof{}, proveError(ch, err)
	}
	return p, nil
}

// redeemPushCode exchanges an enrolment code for the push enrolment it
// names and a token that may complete it.
func (a *app) redeemPushCode(ctx context.Context, f pushEnrollFlags) (*client.Client, api.Enrolment, string, error) {
	code := f.code
	if code == "-" {
		var err error
		if code, err = readSecret(a.stderr, "Enrolment code: "); err != nil {
			return nil, api.Enrolment{}, "", err
		}
	}
	anon, err := a.clientWithToken(f.connFlags, "")
	if err != nil {
		return nil, api.Enrolment{}, "", err
	}
	red, err := anon.RedeemEnrolmentCode(ctx, code)
	if err != nil {
		return nil, api.Enrolment{}, "", fmt.Errorf("redeeming the enrolment code (wrong, used or expired? ask for a new one): %w", err)
	}
	if red.Enrolment.Kind != pushkind.Kind {
		return nil, api.Enrolment{}, "", fmt.Errorf("this enrolment code is for a %s factor, not a push companion; enrol it with 'keyfleet-agent enroll'", red.Enrolment.Kind)
	}
	d, err := a.clientWithToken(f.connFlags, red.Token)
	return d, red.Enrolment, red.Username, err
}

func defaultCompanionName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "keyfleet-agent"
	}
	return "keyfleet-agent on " + host
}

// pushKeyFile is the companion's key file.
type pushKeyFile struct {
	Server   string
	FactorID string
	User     string
	Key      *ecdsa.PrivateKey
}

type pushKeyJSON struct {
	Server   string `json:"server"`
	FactorID string `json:"factor_id"`
	User     string `json:"user"`
	Key      []byte `json:"private_key"` // PKCS #8
}

// pushKeyPath is --key, else the default under the user's config folder.
func pushKeyPath(flag string, getenv func(string) string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errors.New("no home folder to keep the device key in; give --key FILE")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "keyfleet", "push.json"), nil
}

func savePushKey(path string, k pushKeyFile) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(pushKeyJSON{Server: k.Server, FactorID: k.FactorID, User: k.User, Key: der}, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("making the key's folder: %w", err)
	}
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing the device key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the device key: %w", err)
	}
	return nil
}

func loadPushKey(path string) (pushKeyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pushKeyFile{}, fmt.Errorf("reading the device key: %w; enrol this companion first (keyfleet-agent push enroll)", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return pushKeyFile{}, fmt.Errorf("%s can be read by others (mode %o): chmod 600 it, or enrol again", path, st.Mode().Perm())
	}
	var j pushKeyJSON
	if err := json.Unmarshal(b, &j); err != nil || j.FactorID == "" {
		return pushKeyFile{}, fmt.Errorf("%s is not a push companion's key file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(j.Key)
	ek, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok {
		return pushKeyFile{}, fmt.Errorf("%s holds no P-256 key", path)
	}
	return pushKeyFile{Server: j.Server, FactorID: j.FactorID, User: j.User, Key: ek}, nil
}

// deviceClient connects as the companion in the key file: to its server
// unless --server says otherwise, with the CA from the flags, the
// environment or the saved login.
func (a *app) deviceClient(f pushFlags) (*client.Client, *pushkind.Device, pushKeyFile, error) {
	path, err := pushKeyPath(f.keyFile, a.getenv)
	if err != nil {
		return nil, nil, pushKeyFile{}, err
	}
	k, err := loadPushKey(path)
	if err != nil {
		return nil, nil, pushKeyFile{}, err
	}
	if f.server == "" {
		f.server = k.Server
	}
	c, err := a.clientWithToken(f.connFlags, "")
	if err != nil {
		return nil, nil, pushKeyFile{}, err
	}
	dev := &pushkind.Device{Key: k.Key, FactorID: k.FactorID}
	return c.WithDevice(dev), dev, k, nil
}

// idleStream is how long a silent stream is trusted (keyfleetd writes a
// keep-alive every 20 s by default).
const idleStream = 70 * time.Second
