package daemon_test

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	otptotp "github.com/pquerna/otp/totp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/keyfleet/keyfleet/api"
	kfradius "github.com/keyfleet/keyfleet/daemon/radius"
)

// radiusBenchUsers have one TOTP factor each: 1,600 fresh codes, for
// -benchtime=1500x at most.
const radiusBenchUsers = 800

func enrolRadiusUser(f *totpFixture, i int) error {
	user := fmt.Sprintf("radius-%d", i)
	if err := postErr(f, "/v1/users", api.CreateUser{Username: user}, nil); err != nil {
		return err
	}
	var en api.Enrolment
	if err := postErr(f, "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "totp"}, &en); err != nil {
		return err
	}
	seed, err := f.seed(en)
	if err != nil {
		return err
	}
	code, _ := otptotp.GenerateCode(seed, time.Now().Add(-30*time.Second))
	body := api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}
	if err := postErr(f, "/v1/enrolments/"+en.ID+"/complete", body, nil); err != nil {
		return err
	}
	f.radiusUsers, f.radiusSeeds = append(f.radiusUsers, user), append(f.radiusSeeds, seed)
	return nil
}

// benchRadius is a listener on a loopback port for one client whose rate
// the benchmark does not hit.
func benchRadius(b *testing.B, secret string) kfradius.Config {
	file := filepath.Join(b.TempDir(), "nas.secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	radiusSecret = secret
	return kfradius.Config{Enabled: true, Listen: "127.0.0.1:0", MaxInFlight: 1024,
		Clients:   []kfradius.ClientConfig{{Name: "bench", Networks: []string{"127.0.0.1"}, SecretFile: file}},
		RateLimit: kfradius.RateConfig{PerClient: 1e6, ClientBurst: 1e6}}
}

var (
	radiusSecret string
	// radiusConns keeps the clients' sockets between requests: one per
	// client at a time.
	radiusConns = make(chan *net.UDPConn, 64)
)

// radiusOnce sends the next fresh code in an Access-Request, signed with
// a Message-Authenticator, and waits for its Access-Accept.
func (f *totpFixture) radiusOnce(b *testing.B) {
	n := len(f.radiusUsers)
	if n == 0 {
		b.Fatalf("the fixture in %s predates its RADIUS users: remove that folder", os.Getenv(benchDataEnv))
	}
	i := int(f.radiusNext.Add(1) - 1)
	if i >= 2*n {
		b.Fatalf("the fixture's %d RADIUS users have no fresh codes left: run with a smaller -benchtime", n)
	}
	at := time.Now().Add(time.Duration(i/n) * 30 * time.Second) // this step, then the next
	if err := f.radiusAccepted(i%n, at); err != nil {
		b.Fatal(err)
	}
}

// warmRadius verifies every RADIUS user once through the listener, with
// the code of the step before this one (accepted: one step either side),
// which leaves this step and the next to the measured part: what a
// keyfleetd that has run a while has done (each user's first verification
// after a start also records the policy rules that apply to them, as
// warmVerify says).
func (f *totpFixture) warmRadius(b *testing.B) {
	next := atomic.Int64{}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	at := time.Now().Add(-30 * time.Second)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(f.radiusUsers) {
					return
				}
				if err := f.radiusAccepted(i, at); err != nil {
					errs <- fmt.Errorf("warming up: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// radiusAccepted sends RADIUS user i's code of the step at at in an
// Access-Request, signed with a Message-Authenticator, and says whether
// an Access-Accept came back.
func (f *totpFixture) radiusAccepted(i int, at time.Time) error {
	code, _ := otptotp.GenerateCodeCustom(f.radiusSeeds[i], at, otptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	req := accessRequest(f.radiusUsers[i], code)
	conn, err := radiusConn(f.radiusAddr)
	if err != nil {
		return err
	}
	defer func() { radiusConns <- conn }()
	if _, err := conn.Write(req); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("no answer to an Access-Request: %w", err)
		}
		if buf[1] != req[1] {
			continue // a late answer to an earlier request on this socket
		}
		if radius.Code(buf[0]) != radius.CodeAccessAccept || !radius.IsAuthenticResponse(buf[:m], req, []byte(radiusSecret)) {
			return fmt.Errorf("a fresh code for %s got %v", f.radiusUsers[i], radius.Code(buf[0]))
		}
		return nil
	}
}

// radiusConn takes a socket connected to the listener at addr.
func radiusConn(addr string) (*net.UDPConn, error) {
	select {
	case c := <-radiusConns:
		if c.RemoteAddr().String() == addr {
			return c, nil
		}
		c.Close() // from an earlier run's listener
	default:
	}
	raddr, _ := net.ResolveUDPAddr("udp", addr)
	return net.DialUDP("udp", nil, raddr)
}

func accessRequest(user, code string) []byte {
	p := radius.New(radius.CodeAccessRequest, []byte(radiusSecret))
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, code)
	rfc2865.NASIdentifier_SetString(p, "bench-nas")
	p.Set(rfc2869.MessageAuthenticator_Type, make([]byte, 16))
	b, _ := p.Encode()
	mac := hmac.New(md5.New, []byte(radiusSecret))
	mac.Write(b)
	at := len(b) - 16 // Set appended it last
	copy(b[at:], mac.Sum(nil))
	return b
}

// latencies collects the clients' request times.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, d...)
}

func (l *latencies) p99() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return 0
	}
	slices.Sort(l.all)
	return l.all[len(l.all)*99/100]
}
