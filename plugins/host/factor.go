package host

import (
	"context"
	"regexp"

	"github.com/keyfleet/keyfleet/plugins/sdk"
)

var kindRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Describe returns what the plugin said when it was loaded.
func (m *managed) Describe(context.Context) (sdk.Info, error) { return m.info, nil }

// BeginEnrol calls the plugin; see call for errors.
func (m *managed) BeginEnrol(ctx context.Context, req sdk.BeginEnrolRequest) (sdk.BeginEnrolResponse, error) {
	return call(ctx, m, "BeginEnrol", func(ctx context.Context, f sdk.Factor) (sdk.BeginEnrolResponse, error) {
		return f.BeginEnrol(ctx, req)
	})
}

// FinishEnrol calls the plugin; see call for errors.
func (m *managed) FinishEnrol(ctx context.Context, req sdk.FinishEnrolRequest) (sdk.FinishEnrolResponse, error) {
	return call(ctx, m, "FinishEnrol", func(ctx context.Context, f sdk.Factor) (sdk.FinishEnrolResponse, error) {
		return f.FinishEnrol(ctx, req)
	})
}

// BeginVerify calls the plugin; see call for errors.
func (m *managed) BeginVerify(ctx context.Context, req sdk.BeginVerifyRequest) (sdk.BeginVerifyResponse, error) {
	return call(ctx, m, "BeginVerify", func(ctx context.Context, f sdk.Factor) (sdk.BeginVerifyResponse, error) {
		return f.BeginVerify(ctx, req)
	})
}

// FinishVerify calls the plugin; see call for errors.
func (m *managed) FinishVerify(ctx context.Context, req sdk.FinishVerifyRequest) (sdk.FinishVerifyResponse, error) {
	return call(ctx, m, "FinishVerify", func(ctx context.Context, f sdk.Factor) (sdk.FinishVerifyResponse, error) {
		return f.FinishVerify(ctx, req)
	})
}
