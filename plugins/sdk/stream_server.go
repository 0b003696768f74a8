package sdk

import (
	"context"
	"time"

	"google.golang.org/grpc/status"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// streamServer is the plugin side of protocol version 2: it runs each call
// of a batch on its own goroutine, as gRPC runs unary calls, and sends the
// replies ready at the same moment in one message.
type streamServer struct {
	factorpb.UnimplementedFactorStreamServer
	unary *grpcServer
}

var _ factorpb.FactorStreamServer = (*streamServer)(nil)

func (s *streamServer) Calls(stream factorpb.FactorStream_CallsServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	replies := make(chan *factorpb.Reply, 4*maxBatch)
	sent := make(chan error, 1)
	go func() { sent <- sendReplies(ctx, stream, replies) }()
	for {
		b, err := stream.Recv()
		if err != nil {
			cancel() // the host hung up: stop sending, drop what is still running
			<-sent
			return nil
		}
		for _, c := range b.GetCalls() {
			go func() {
				r := s.serve(ctx, c)
				select {
				case replies <- r:
				case <-ctx.Done():
				}
			}()
		}
	}
}

func sendReplies(ctx context.Context, stream factorpb.FactorStream_CallsServer, replies chan *factorpb.Reply) error {
	for {
		var first *factorpb.Reply
		select {
		case first = <-replies:
		case <-ctx.Done():
			return nil
		}
		if err := stream.Send(&factorpb.ReplyBatch{Replies: drain(replies, first)}); err != nil {
			return err
		}
	}
}

// serve runs one call under the time the host gives it.
func (s *streamServer) serve(ctx context.Context, c *factorpb.Call) *factorpb.Reply {
	if ms := c.GetTimeoutMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	out := &factorpb.Reply{Id: c.GetId()}
	var err error
	switch req := c.GetRequest().(type) {
	case *factorpb.Call_BeginEnrol:
		var res *factorpb.BeginEnrolResponse
		if res, err = s.unary.BeginEnrol(ctx, req.BeginEnrol); err == nil {
			out.Response = &factorpb.Reply_BeginEnrol{BeginEnrol: res}
		}
	case *factorpb.Call_FinishEnrol:
		var res *factorpb.FinishEnrolResponse
		if res, err = s.unary.FinishEnrol(ctx, req.FinishEnrol); err == nil {
			out.Response = &factorpb.Reply_FinishEnrol{FinishEnrol: res}
		}
	case *factorpb.Call_BeginVerify:
		var res *factorpb.BeginVerifyResponse
		if res, err = s.unary.BeginVerify(ctx, req.BeginVerify); err == nil {
			out.Response = &factorpb.Reply_BeginVerify{BeginVerify: res}
		}
	case *factorpb.Call_FinishVerify:
		var res *factorpb.FinishVerifyResponse
		if res, err = s.unary.FinishVerify(ctx, req.FinishVerify); err == nil {
			out.Response = &factorpb.Reply_FinishVerify{FinishVerify: res}
		}
	default:
		err = toStatus(ErrUnsupported)
	}
	if err != nil {
		st := status.Convert(err)
		out.Response = &factorpb.Reply_Error{Error: &factorpb.Error{Code: int32(st.Code()), Message: st.Message()}}
	}
	return out
}
