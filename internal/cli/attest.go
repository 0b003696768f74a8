package cli

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyfleet/keyfleet/attest"
)

// The attest commands work offline: they read files and verify with the
// built-in Yubico roots plus any --roots given, without keyfleetd.

func (a *app) attestCmd() *cobra.Command {
	cmd := group("attest", "Verify a key's attestation offline and print what it proves",
		"  keyfleet attest piv --slot-cert slot9a.pem --device-cert f9.pem\n  keyfleet attest webauthn --file registration.json -o json")
	cmd.AddCommand(a.attestPIVCmd(), a.attestCSRCmd(), a.attestWebAuthnCmd())
	return cmd
}

type attestFlags struct{ at, roots string }

func (f *attestFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.at, "at", "", "verify as of this time (RFC 3339; default now)")
	cmd.Flags().StringVar(&f.roots, "roots", "", "PEM file of extra trusted roots (a test CA, a virtual key's CA)")
}

func (f *attestFlags) load() (time.Time, []*x509.Certificate, error) {
	at := time.Now()
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return time.Time{}, nil, usagef("--at %q is not an RFC 3339 time like 2024-05-01T12:00:00Z", f.at)
		}
		at = t
	}
	if f.roots == "" {
		return at, nil, nil
	}
	b, err := os.ReadFile(f.roots)
	if err != nil {
		return time.Time{}, nil, usagef("reading --roots: %v", err)
	}
	roots, err := attest.ParseCertificates(b)
	if err != nil {
		return time.Time{}, nil, usagef("--roots %s: %v", f.roots, err)
	}
	return at, roots, nil
}

func readCert(flag, file string) (*x509.Certificate, error) {
	if file == "" {
		return nil, usagef("%s FILE is required", flag)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("reading %s: %v", flag, err)
	}
	c, err := attest.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, file, err)
	}
	return c, nil
}

func (a *app) attestPIVCmd() *cobra.Command {
	var f attestFlags
	var slot, device string
	cmd := &cobra.Command{
		Use: "piv --slot-cert FILE --device-cert FILE", Short: "Verify a PIV slot attestation and its F9 device certificate",
		Example: "  keyfleet attest piv --slot-cert slot9a.pem --device-cert f9.pem --at 2024-05-01T00:00:00Z",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, roots, err := f.load()
			if err != nil {
				return err
			}
			s, err := readCert("--slot-cert", slot)
			if err != nil {
				return err
			}
			d, err := readCert("--device-cert", device)
			if err != nil {
				return err
			}
			ev, err := attest.VerifyPIV(s, d, attest.PIVOptions{Time: at, Roots: roots})
			return a.printEvidence(ev, err)
		},
	}
	cmd.Flags().StringVar(&slot, "slot-cert", "", "the slot's attestation certificate (PEM or DER)")
	cmd.Flags().StringVar(&device, "device-cert", "", "the F9 device certificate (PEM or DER)")
	f.add(cmd)
	return cmd
}

func (a *app) attestCSRCmd() *cobra.Command {
	var f attestFlags
	var file string
	cmd := &cobra.Command{
		Use: "csr --file FILE", Short: "Verify the attestation carried in a CSR (as yubico-piv-tool writes it)",
		Example: "  keyfleet attest csr --file request.csr.pem",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, roots, err := f.load()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return usagef("reading --file: %v", err)
			}
			der, err := attest.ParseCSR(b)
			if err != nil {
				return err
			}
			ev, err := attest.VerifyPIVCSR(der, attest.PIVOptions{Time: at, Roots: roots})
			return a.printEvidence(ev, err)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the CSR (PEM or DER)")
	f.add(cmd)
	return cmd
}

func (a *app) attestWebAuthnCmd() *cobra.Command {
	var f attestFlags
	var file string
	cmd := &cobra.Command{
		Use:     "webauthn --file FILE",
		Short:   "Verify a WebAuthn registration (JSON with attestationObject, clientDataJSON, challenge, origin, rpId)",
		Example: "  keyfleet attest webauthn --file registration.json --at 2023-01-01T00:00:00Z",
		Args:    argNames(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			at, roots, err := f.load()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return usagef("reading --file: %v", err)
			}
			reg, err := attest.ParseRegistrationJSON(b)
			if err != nil {
				return err
			}
			exp := reg.Expectation(at)
			exp.Roots = roots
			ev, err := attest.VerifyFIDO2(reg.AttestationObject, reg.ClientDataJSON, exp)
			return a.printEvidence(ev, err)
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the registration JSON")
	f.add(cmd)
	return cmd
}

func (a *app) printEvidence(ev *attest.Evidence, err error) error {
	if err != nil {
		return fail(fmt.Errorf("attestation refused: %w", err), "the key or its certificates cannot be trusted as they are")
	}
	var adv []string
	for _, x := range ev.Advisories {
		adv = append(adv, x.ID+": "+x.Summary)
	}
	serial := ""
	if ev.Serial != 0 {
		serial = fmt.Sprint(ev.Serial)
	}
	return a.emit(ev, func() error {
		return a.fields("Format", ev.Format, "Vendor", dash(ev.Vendor), "Model", dash(ev.Model), "Serial", dash(serial),
			"Firmware", dash(ev.Firmware), "Form factor", dash(ev.FormFactor), "FIPS", fmt.Sprint(ev.FIPS),
			"Slot", dash(ev.Slot), "PIN policy", dash(ev.PINPolicy), "Touch policy", dash(ev.TouchPolicy),
			"Key", dash(ev.KeyAlgorithm), "AAGUID", dash(ev.AAGUID), "AAGUID attested", fmt.Sprint(ev.AAGUIDAttested),
			"Attestation", dash(ev.AttestationType), "Chain", fmt.Sprintf("%d certificates", len(ev.Chain)),
			"Advisories", dash(strings.Join(adv, "; ")))
	})
}
