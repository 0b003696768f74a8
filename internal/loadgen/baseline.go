package loadgen

import (
	"errors"
	"time"

	otptotp "github.com/pquerna/otp/totp"
)

// OTPBaseline measures pquerna/otp's own TOTP check (the arithmetic a
// verification cannot avoid: three HMAC-SHA1 codes around now) on one
// core for about d, in the same run as the daemon's figures, since the
// shared machine's speed moves between runs. It returns the time one
// check takes.
func OTPBaseline(d time.Duration) (time.Duration, error) {
	key, err := otptotp.Generate(otptotp.GenerateOpts{Issuer: "keyfleet", AccountName: "baseline"})
	if err != nil {
		return 0, err
	}
	code, err := otptotp.GenerateCode(key.Secret(), time.Now())
	if err != nil {
		return 0, err
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		for range 1000 {
			if !otptotp.Validate(code, key.Secret()) {
				return 0, errors.New("pquerna/otp refused its own code")
			}
		}
		n += 1000
	}
	return time.Since(start) / time.Duration(n), nil
}
