package sdk

import (
	"context"

	"google.golang.org/grpc"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// grpcClient is the host side of protocol version 1: a [Factor] whose
// calls go to a plugin process, one unary gRPC call each. Errors come
// back as the package's sentinels (see errors.go), so the daemon handles
// a plugin's errors as a built-in kind's.
type grpcClient struct {
	c factorpb.FactorClient
}

var _ Factor = (*grpcClient)(nil)

// NewGRPCClient returns a Factor that calls the factor service on conn
// (protocol version 1). The plugin host gets one, or the version 2 client,
// from go-plugin's Dispense; tests may use it with any connection to a
// server that [Serve] or [RegisterGRPCServer] set up.
func NewGRPCClient(conn grpc.ClientConnInterface) Factor {
	return &grpcClient{c: factorpb.NewFactorClient(conn)}
}

// RegisterGRPCServer serves impl's calls on s, in both protocol versions.
// [Serve] does this for a plugin; it is exported for tests and for hosts
// that run a kind in another process by other means.
func RegisterGRPCServer(s *grpc.Server, impl Factor) {
	unary := &grpcServer{impl: impl}
	factorpb.RegisterFactorServer(s, unary)
	factorpb.RegisterFactorStreamServer(s, &streamServer{unary: unary})
}

func (c *grpcClient) Describe(ctx context.Context) (Info, error) {
	out, err := c.c.Describe(ctx, &factorpb.DescribeRequest{})
	if err != nil {
		return Info{}, fromStatus(err)
	}
	return fromInfo(out), nil
}

func (c *grpcClient) BeginEnrol(ctx context.Context, req BeginEnrolRequest) (BeginEnrolResponse, error) {
	out, err := c.c.BeginEnrol(ctx, toBeginEnrol(req))
	if err != nil {
		return BeginEnrolResponse{}, fromStatus(err)
	}
	return fromBeginEnrol(out), nil
}

func (c *grpcClient) FinishEnrol(ctx context.Context, req FinishEnrolRequest) (FinishEnrolResponse, error) {
	out, err := c.c.FinishEnrol(ctx, toFinishEnrol(req))
	if err != nil {
		return FinishEnrolResponse{}, fromStatus(err)
	}
	return fromFinishEnrol(out), nil
}

func (c *grpcClient) BeginVerify(ctx context.Context, req BeginVerifyRequest) (BeginVerifyResponse, error) {
	out, err := c.c.BeginVerify(ctx, toBeginVerify(req))
	if err != nil {
		return BeginVerifyResponse{}, fromStatus(err)
	}
	return fromBeginVerify(out), nil
}

func (c *grpcClient) FinishVerify(ctx context.Context, req FinishVerifyRequest) (FinishVerifyResponse, error) {
	out, err := c.c.FinishVerify(ctx, toFinishVerify(req))
	if err != nil {
		return FinishVerifyResponse{}, fromStatus(err)
	}
	return fromFinishVerify(out), nil
}

// The requests and answers of both protocol versions, to and from the
// wire.

func toBeginEnrol(req BeginEnrolRequest) *factorpb.BeginEnrolRequest {
	return &factorpb.BeginEnrolRequest{User: toUser(req.User), EnrolmentId: req.EnrolmentID, Challenge: req.Challenge,
		Options: req.Options, Now: toInstant(req.Now)}
}

func fromBeginEnrol(out *factorpb.BeginEnrolResponse) BeginEnrolResponse {
	return BeginEnrolResponse{Display: mapOrNil(out.GetDisplay()), Params: mapOrNil(out.GetParams()), State: orNil(out.GetState())}
}

func toFinishEnrol(req FinishEnrolRequest) *factorpb.FinishEnrolRequest {
	return &factorpb.FinishEnrolRequest{User: toUser(req.User), EnrolmentId: req.EnrolmentID, Challenge: req.Challenge,
		State: req.State, Options: req.Options, Response: req.Response, Now: toInstant(req.Now)}
}

func fromFinishEnrol(out *factorpb.FinishEnrolResponse) FinishEnrolResponse {
	return FinishEnrolResponse{State: orNil(out.GetState()), Public: orNil(out.GetPublic()),
		Evidence: orNil(out.GetEvidence()), Device: fromDevice(out.GetDevice()), Pending: out.GetPending()}
}

func toBeginVerify(req BeginVerifyRequest) *factorpb.BeginVerifyRequest {
	return &factorpb.BeginVerifyRequest{User: toUser(req.User), FactorId: req.FactorID, State: req.State,
		Challenge: req.Challenge, Now: toInstant(req.Now), VerificationId: req.VerificationID, Context: toContext(req.Context)}
}

func fromBeginVerify(out *factorpb.BeginVerifyResponse) BeginVerifyResponse {
	return BeginVerifyResponse{Prompt: orNil(out.GetPrompt()), Session: orNil(out.GetSession()),
		Delivery: orNil(out.GetDelivery()), Deadline: fromInstant(out.GetDeadline())}
}

func toFinishVerify(req FinishVerifyRequest) *factorpb.FinishVerifyRequest {
	return &factorpb.FinishVerifyRequest{User: toUser(req.User), FactorId: req.FactorID, State: req.State,
		Session: req.Session, Response: req.Response, Now: toInstant(req.Now)}
}

func fromFinishVerify(out *factorpb.FinishVerifyResponse) FinishVerifyResponse {
	res := FinishVerifyResponse{OK: out.GetOk(), Reason: out.GetReason(), Suspicious: out.GetSuspicious(), Reported: out.GetReported()}
	if out.GetStateSet() {
		res.State = out.GetState()
		if res.State == nil {
			res.State = []byte{}
		}
	}
	return res
}
