package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	otptotp "github.com/pquerna/otp/totp"

	"github.com/keyfleet/keyfleet/api"
)

// period is the TOTP time step keyfleet's TOTP kind uses by default.
const period = 30 * time.Second

// Fixture is a set of users with TOTP factors and a service token that
// may verify them, kept in a file between runs.
type Fixture struct {
	// Token is a service account's token (role service).
	Token   string          `json:"token"`
	Factors []FixtureFactor `json:"factors"`
}

// FixtureFactor is one enrolled TOTP factor.
type FixtureFactor struct {
	ID   string `json:"id"`
	User string `json:"user"`
	Seed string `json:"seed"`
	// Used is the last time step a code of it was sent for.
	Used uint64 `json:"used"`
}

// LoadFixture reads a fixture file.
func LoadFixture(path string) (*Fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Save writes the fixture (0600: it holds a token and seeds).
func (f *Fixture) Save(path string) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FixtureConfig says what BuildFixture makes.
type FixtureConfig struct {
	Users          int    // users with TOTP factors
	FactorsPerUser int    // TOTP factors each (default 2: what a real user has)
	Prefix         string // usernames are Prefix-N (default "totp")
	Workers        int    // enrolments at once (default 4)
	// Progress, if set, is told how many users are done.
	Progress func(done int)
}

// BuildFixture makes a service account with a token and users with TOTP
// factors, through the API as an administrator would (admin is a client
// with an admin's token). Each factor is enrolled with the previous time
// step's code, so the current and the next step are fresh.
func BuildFixture(ctx context.Context, admin *Client, cfg FixtureConfig) (*Fixture, error) {
	if cfg.FactorsPerUser <= 0 {
		cfg.FactorsPerUser = 2
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "totp"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	svc := cfg.Prefix + "-app"
	if err := admin.Do(ctx, "POST", "/v1/users", api.CreateUser{Username: svc, Kind: api.KindService}, nil); err != nil {
		return nil, err
	}
	var tok api.CreatedToken
	if err := admin.Do(ctx, "POST", "/v1/tokens", api.CreateToken{User: svc, Name: "loadgen"}, &tok); err != nil {
		return nil, err
	}
	f := &Fixture{Token: tok.Secret, Factors: make([]FixtureFactor, cfg.Users*cfg.FactorsPerUser)}
	var mu sync.Mutex
	done := 0
	res := Run(ctx, cfg.Users, cfg.Workers, func(ctx context.Context, i int) error {
		user := fmt.Sprintf("%s-%d", cfg.Prefix, i)
		if err := admin.Do(ctx, "POST", "/v1/users", api.CreateUser{Username: user, Email: user + "@totp.example"}, nil); err != nil {
			return err
		}
		for j := range cfg.FactorsPerUser {
			ff, err := enrolTOTP(ctx, admin, user, i)
			if err != nil {
				return err
			}
			f.Factors[i*cfg.FactorsPerUser+j] = ff
		}
		if cfg.Progress != nil {
			mu.Lock()
			done++
			cfg.Progress(done)
			mu.Unlock()
		}
		return nil
	})
	if res.FirstErr != nil {
		return nil, res.FirstErr
	}
	return f, nil
}

// enrolTOTP enrols a TOTP factor for user as an IT desk does it: an
// administrator makes the enrolment and hands its code to the user, who
// redeems it (and sees the seed, shown only to the person who will hold
// the factor) and completes it with the redemption's token. Redemptions
// are rate-limited per client address, so each user's come from an
// address of their own, through a proxy keyfleetd trusts
// (KEYFLEET_TRUSTED_PROXIES=127.0.0.1/32 while the fixture is made).
func enrolTOTP(ctx context.Context, admin *Client, user string, i int) (FixtureFactor, error) {
	var en api.Enrolment
	if err := admin.Do(ctx, "POST", "/v1/enrolments", api.CreateEnrolment{User: user, Kind: "totp"}, &en); err != nil {
		return FixtureFactor{}, err
	}
	var red api.RedeemedEnrolment
	addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	if err := admin.WithToken("").WithHeader("X-Forwarded-For", addr).Do(ctx, "POST", "/v1/enrolments/redeem", api.RedeemEnrolmentCode{Code: en.Code}, &red); err != nil {
		return FixtureFactor{}, err
	}
	seed := red.Enrolment.Display["secret"]
	// Near the end of a step, the daemon may check the code in the next
	// one, where the previous step is out of its window: wait for it.
	if left := time.Until(stepTime(step(time.Now()) + 1)); left < 2*time.Second {
		time.Sleep(left)
	}
	prev := step(time.Now()) - 1
	code, err := otptotp.GenerateCode(seed, stepTime(prev))
	if err != nil {
		return FixtureFactor{}, err
	}
	var fac api.Factor
	body := api.CompleteEnrolment{Payload: json.RawMessage(fmt.Sprintf(`{"code":%q}`, code))}
	if err := admin.WithToken(red.Token).Do(ctx, "POST", "/v1/enrolments/"+en.ID+"/complete", body, &fac); err != nil {
		return FixtureFactor{}, err
	}
	return FixtureFactor{ID: fac.ID, User: user, Seed: seed, Used: prev}, nil
}

func step(t time.Time) uint64 { return uint64(t.Unix()) / uint64(period/time.Second) }

func stepTime(s uint64) time.Time {
	return time.Unix(int64(s)*int64(period/time.Second), 0)
}

// Warm reads every fixture user's MFA status and factor list once (admin
// is a client with an admin's token), so that a daemon just started has
// the blocks it will read in its caches, as one that has been running
// has.
func (f *Fixture) Warm(ctx context.Context, admin *Client, clients int) Result {
	var users []string
	for i, ff := range f.Factors {
		if i == 0 || f.Factors[i-1].User != ff.User {
			users = append(users, ff.User)
		}
	}
	return Run(ctx, 2*len(users), clients, func(ctx context.Context, i int) error {
		u := users[i/2]
		if i%2 == 0 {
			return admin.Do(ctx, "GET", "/v1/users/"+u+"/mfa-status", nil, nil)
		}
		return admin.Do(ctx, "GET", "/v1/factors?user="+u, nil, nil)
	})
}
