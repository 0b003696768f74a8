package sdk

import (
	"time"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// Conversions between the plain Go types and their wire form.

func toInstant(t time.Time) *factorpb.Instant {
	if t.IsZero() {
		return &factorpb.Instant{Zero: true}
	}
	return &factorpb.Instant{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

func fromInstant(i *factorpb.Instant) time.Time {
	if i == nil || i.Zero {
		return time.Time{}
	}
	return time.Unix(i.Seconds, int64(i.Nanos)).UTC()
}

func toUser(u User) *factorpb.User {
	return &factorpb.User{Id: u.ID, Username: u.Username, DisplayName: u.DisplayName, Groups: u.Groups, Roles: u.Roles}
}

func fromUser(u *factorpb.User) User {
	if u == nil {
		return User{}
	}
	return User{ID: u.Id, Username: u.Username, DisplayName: u.DisplayName, Groups: u.Groups, Roles: u.Roles}
}

func toInputs(in []Input) []*factorpb.Input {
	out := make([]*factorpb.Input, len(in))
	for i, v := range in {
		out[i] = &factorpb.Input{Name: v.Name, Description: v.Description}
	}
	return out
}

func fromInputs(in []*factorpb.Input) []Input {
	if len(in) == 0 {
		return nil
	}
	out := make([]Input, len(in))
	for i, v := range in {
		out[i] = Input{Name: v.GetName(), Description: v.GetDescription()}
	}
	return out
}

func toInfo(i Info) *factorpb.Info {
	return &factorpb.Info{Kind: i.Kind, DisplayName: i.DisplayName, Version: i.Version, Hardware: i.Hardware,
		EnrolInputs: toInputs(i.EnrolInputs), VerifyInputs: toInputs(i.VerifyInputs), OutOfBand: i.OutOfBand,
		ChallengeFree: i.ChallengeFree}
}

func fromInfo(i *factorpb.Info) Info {
	return Info{Kind: i.GetKind(), DisplayName: i.GetDisplayName(), Version: i.GetVersion(), Hardware: i.GetHardware(),
		EnrolInputs: fromInputs(i.GetEnrolInputs()), VerifyInputs: fromInputs(i.GetVerifyInputs()), OutOfBand: i.GetOutOfBand(),
		ChallengeFree: i.GetChallengeFree()}
}

func toContext(c VerifyContext) *factorpb.VerifyContext {
	if c == (VerifyContext{}) {
		return nil
	}
	return &factorpb.VerifyContext{Application: c.Application, Address: c.Address}
}

func fromContext(c *factorpb.VerifyContext) VerifyContext {
	return VerifyContext{Application: c.GetApplication(), Address: c.GetAddress()}
}

func toDevice(d *Device) *factorpb.Device {
	if d == nil {
		return nil
	}
	return &factorpb.Device{Vendor: d.Vendor, Model: d.Model, Serial: d.Serial, Firmware: d.Firmware}
}

func fromDevice(d *factorpb.Device) *Device {
	if d == nil {
		return nil
	}
	return &Device{Vendor: d.Vendor, Model: d.Model, Serial: d.Serial, Firmware: d.Firmware}
}

// orNil keeps "no bytes" as nil on the receiving side, as the sender's
// zero value was.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// mapOrNil does the same for maps.
func mapOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
