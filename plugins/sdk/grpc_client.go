package sdk

import (
	"context"

	"google.golang.org/grpc"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// grpcClient is the host side of the wire: a [Factor] whose calls go to a
// plugin process. Errors come back as the package's sentinels (see
// errors.go), so the daemon handles a plugin's errors as a built-in kind's.
type grpcClient struct {
	c factorpb.FactorClient
}

var _ Factor = (*grpcClient)(nil)

// NewGRPCClient returns a Factor that calls the factor service on conn.
// The plugin host gets one from go-plugin's Dispense; tests may use it
// with any connection to a server that [Serve] or [RegisterGRPCServer] set
// up.
func NewGRPCClient(conn grpc.ClientConnInterface) Factor {
	return &grpcClient{c: factorpb.NewFactorClient(conn)}
}

// RegisterGRPCServer serves impl's calls on s. [Serve] does this for a
// plugin; it is exported for tests and for hosts that run a kind in
// another process by other means.
func RegisterGRPCServer(s *grpc.Server, impl Factor) {
	factorpb.RegisterFactorServer(s, &grpcServer{impl: impl})
}

func (c *grpcClient) Describe(ctx context.Context) (Info, error) {
	out, err := c.c.Describe(ctx, &factorpb.DescribeRequest{})
	if err != nil {
		return Info{}, fromStatus(err)
	}
	return fromInfo(out), nil
}

func (c *grpcClient) BeginEnrol(ctx context.Context, req BeginEnrolRequest) (BeginEnrolResponse, error) {
	out, err := c.c.BeginEnrol(ctx, &factorpb.BeginEnrolRequest{
		User: toUser(req.User), EnrolmentId: req.EnrolmentID, Challenge: req.Challenge,
		Options: req.Options, Now: toInstant(req.Now),
	})
	if err != nil {
		return BeginEnrolResponse{}, fromStatus(err)
	}
	return BeginEnrolResponse{Display: mapOrNil(out.GetDisplay()), Params: mapOrNil(out.GetParams()),
		State: orNil(out.GetState())}, nil
}

func (c *grpcClient) FinishEnrol(ctx context.Context, req FinishEnrolRequest) (FinishEnrolResponse, error) {
	out, err := c.c.FinishEnrol(ctx, &factorpb.FinishEnrolRequest{
		User: toUser(req.User), EnrolmentId: req.EnrolmentID, Challenge: req.Challenge, State: req.State,
		Options: req.Options, Response: req.Response, Now: toInstant(req.Now),
	})
	if err != nil {
		return FinishEnrolResponse{}, fromStatus(err)
	}
	return FinishEnrolResponse{State: orNil(out.GetState()), Public: orNil(out.GetPublic()),
		Evidence: orNil(out.GetEvidence()), Device: fromDevice(out.GetDevice()), Pending: out.GetPending()}, nil
}

func (c *grpcClient) BeginVerify(ctx context.Context, req BeginVerifyRequest) (BeginVerifyResponse, error) {
	out, err := c.c.BeginVerify(ctx, &factorpb.BeginVerifyRequest{
		User: toUser(req.User), FactorId: req.FactorID, State: req.State, Challenge: req.Challenge,
		Now: toInstant(req.Now), VerificationId: req.VerificationID, Context: toContext(req.Context),
	})
	if err != nil {
		return BeginVerifyResponse{}, fromStatus(err)
	}
	return BeginVerifyResponse{Prompt: orNil(out.GetPrompt()), Session: orNil(out.GetSession()),
		Delivery: orNil(out.GetDelivery()), Deadline: fromInstant(out.GetDeadline())}, nil
}

func (c *grpcClient) FinishVerify(ctx context.Context, req FinishVerifyRequest) (FinishVerifyResponse, error) {
	out, err := c.c.FinishVerify(ctx, &factorpb.FinishVerifyRequest{
		User: toUser(req.User), FactorId: req.FactorID, State: req.State, Session: req.Session,
		Response: req.Response, Now: toInstant(req.Now),
	})
	if err != nil {
		return FinishVerifyResponse{}, fromStatus(err)
	}
	res := FinishVerifyResponse{OK: out.GetOk(), Reason: out.GetReason(), Suspicious: out.GetSuspicious(), Reported: out.GetReported()}
	if out.GetStateSet() {
		res.State = out.GetState()
		if res.State == nil {
			res.State = []byte{}
		}
	}
	return res, nil
}
