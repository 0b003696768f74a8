package sdk

import (
	"context"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// grpcServer is the plugin side of the wire: it turns protobuf requests
// into plain Go calls on the author's Factor and its errors into gRPC
// status codes (see errors.go).
type grpcServer struct {
	factorpb.UnimplementedFactorServer
	impl Factor
}

var _ factorpb.FactorServer = (*grpcServer)(nil)

func (s *grpcServer) Describe(ctx context.Context, _ *factorpb.DescribeRequest) (*factorpb.Info, error) {
	info, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return toInfo(info), nil
}

func (s *grpcServer) BeginEnrol(ctx context.Context, in *factorpb.BeginEnrolRequest) (*factorpb.BeginEnrolResponse, error) {
	res, err := s.impl.BeginEnrol(ctx, BeginEnrolRequest{
		User: fromUser(in.GetUser()), EnrolmentID: in.GetEnrolmentId(), Challenge: orNil(in.GetChallenge()),
		Options: mapOrNil(in.GetOptions()), Now: fromInstant(in.GetNow()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &factorpb.BeginEnrolResponse{Display: res.Display, Params: res.Params, State: res.State}, nil
}

func (s *grpcServer) FinishEnrol(ctx context.Context, in *factorpb.FinishEnrolRequest) (*factorpb.FinishEnrolResponse, error) {
	res, err := s.impl.FinishEnrol(ctx, FinishEnrolRequest{
		User: fromUser(in.GetUser()), EnrolmentID: in.GetEnrolmentId(), Challenge: orNil(in.GetChallenge()),
		State: orNil(in.GetState()), Options: mapOrNil(in.GetOptions()), Response: orNil(in.GetResponse()),
		Now: fromInstant(in.GetNow()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &factorpb.FinishEnrolResponse{State: res.State, Public: res.Public, Evidence: res.Evidence,
		Device: toDevice(res.Device), Pending: res.Pending}, nil
}

func (s *grpcServer) BeginVerify(ctx context.Context, in *factorpb.BeginVerifyRequest) (*factorpb.BeginVerifyResponse, error) {
	res, err := s.impl.BeginVerify(ctx, BeginVerifyRequest{
		User: fromUser(in.GetUser()), FactorID: in.GetFactorId(), State: orNil(in.GetState()),
		Challenge: orNil(in.GetChallenge()), Now: fromInstant(in.GetNow()),
		VerificationID: in.GetVerificationId(), Context: fromContext(in.GetContext()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &factorpb.BeginVerifyResponse{Prompt: res.Prompt, Session: res.Session, Delivery: res.Delivery,
		Deadline: toInstant(res.Deadline)}, nil
}

func (s *grpcServer) FinishVerify(ctx context.Context, in *factorpb.FinishVerifyRequest) (*factorpb.FinishVerifyResponse, error) {
	res, err := s.impl.FinishVerify(ctx, FinishVerifyRequest{
		User: fromUser(in.GetUser()), FactorID: in.GetFactorId(), State: orNil(in.GetState()),
		Session: orNil(in.GetSession()), Response: orNil(in.GetResponse()), Now: fromInstant(in.GetNow()),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &factorpb.FinishVerifyResponse{Ok: res.OK, StateSet: res.State != nil, State: res.State,
		Reason: res.Reason, Suspicious: res.Suspicious, Reported: res.Reported}, nil
}
