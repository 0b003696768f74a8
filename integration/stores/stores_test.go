// Package stores tests moving and keeping a store end to end, with the
// real keyfleetd: a Badger store copied into PostgreSQL by keyfleetd
// migrate-store and served from there, and an online backup through the
// running daemon's backup socket restored into a new store epoch.
package stores

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/integration/kftest"
	"github.com/keyfleet/keyfleet/internal/pgtest"
	"github.com/keyfleet/keyfleet/plugins/totp"
)

var (
	bins    map[string]string
	cluster *pgtest.Cluster
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyfleet-bin-")
	if err != nil {
		panic(err)
	}
	bins, err = kftest.Build(dir, "../../cmd/keyfleetd", "../../cmd/keyfleet-plugin-totp")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := pgtest.Main(m, &cluster)
	os.RemoveAll(dir)
	os.Exit(code)
}

func keyfleetd() string { return bins["keyfleetd"] }

// newData makes a Badger data folder with the TOTP plugin configured as
// docs/plugins.md says.
func newData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	kftest.Init(t, keyfleetd(), dir)
	pdir, pins := kftest.PluginDir(t, bins["keyfleet-plugin-totp"])
	kftest.EditConfig(t, dir, map[string]string{"plugins.dir": strconv.Quote(pdir), "plugins.plugins": pins})
	return dir
}

// holder is a person who enrolled a TOTP app: the seed is theirs.
type holder struct {
	user, factor, seed string
}

// code is the holder's code steps steps from now.
func (h holder) code(steps int) string {
	c, _ := totp.Code(h.seed, "SHA1", 6, 30, time.Now().Add(time.Duration(steps)*30*time.Second))
	return c
}

// enrolTOTP has an admin open a TOTP enrolment for user, who redeems its
// code (seeing the seed) and completes it with the previous step's code.
func enrolTOTP(t *testing.T, d *kftest.Daemon, admin, user string) holder {
	t.Helper()
	var en api.Enrolment
	d.MustCall(201, admin, "POST", "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "totp"}, &en)
	var red api.RedeemedEnrolment
	d.MustCall(201, "", "POST", "/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: en.Code}, &red)
	h := holder{user: user, seed: red.Enrolment.Display["secret"]}
	var f api.Factor
	for try := 0; ; try++ { // once more if a step ended on the way
		body := api.CompleteEnrolment{Label: "phone", Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, h.code(-1)))}
		code, err := d.Call(red.Token, "POST", "/v1/enrolments/"+en.ID+"/complete", body, &f)
		if err == nil && code == 201 {
			break
		}
		if try == 1 {
			t.Fatalf("completing %s's TOTP enrolment: %d %v", user, code, err)
		}
	}
	h.factor = f.ID
	return h
}

// verify checks the holder's code in one call with an application's
// token and reports whether it was accepted.
func verify(t *testing.T, d *kftest.Daemon, app string, h holder, code string) bool {
	t.Helper()
	var res api.VerifyResult
	d.MustCall(200, app, "POST", "/v1/verify", api.CheckVerify{User: h.user, FactorID: h.factor, Response: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}, &res)
	return res.OK
}

type auditPage struct {
	Items []api.AuditEvent `json:"items"`
}

// eventAt reads the audit event with sequence number seq.
func eventAt(t *testing.T, d *kftest.Daemon, token string, seq uint64) api.AuditEvent {
	t.Helper()
	var p auditPage
	d.MustCall(200, token, "GET", fmt.Sprintf("/v1/audit?after=%d&limit=1", seq-1), nil, &p)
	if len(p.Items) != 1 || p.Items[0].Seq != seq {
		t.Fatalf("audit event %d: got %+v", seq, p.Items)
	}
	return p.Items[0]
}

func verifyAudit(t *testing.T, d *kftest.Daemon, token string) api.AuditVerification {
	t.Helper()
	var v api.AuditVerification
	d.MustCall(200, token, "GET", "/v1/audit/verify?full=true", nil, &v)
	if !v.OK {
		t.Fatalf("audit verify on %s: %+v", d.Name, v)
	}
	return v
}
