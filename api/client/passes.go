package client

import (
	"context"
	"net/http"

	"github.com/keyfleet/keyfleet/api"
)

// RedeemPass exchanges a temporary access pass's code for a short-lived
// token restricted to enrolling a factor for its user. The client's own
// token is not needed (the code is the credential). Errors are *Error
// (a wrong, used or expired code is 4xx).
func (c *Client) RedeemPass(ctx context.Context, code string) (api.RedeemedPass, error) {
	var out api.RedeemedPass
	_, err := c.do(ctx, http.MethodPost, "/v1/passes/redeem", nil, api.RedeemPass{Code: code}, &out)
	return out, err
}

// RedeemEnrolmentCode exchanges an enrolment code (from keyfleet
// enrolments create) for a short-lived token that can only complete that
// enrolment, and the enrolment itself. The client's own token is not
// needed (the code is the credential). Errors are *Error (a wrong, used
// or expired code is 401, problem "unauthenticated").
func (c *Client) RedeemEnrolmentCode(ctx context.Context, code string) (api.RedeemedEnrolment, error) {
	var out api.RedeemedEnrolment
	_, err := c.do(ctx, http.MethodPost, "/v1/enrolments/redeem", nil, api.RedeemEnrolmentCode{Code: code}, &out)
	return out, err
}
