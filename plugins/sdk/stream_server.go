package sdk

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/status"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// streamServer is the plugin side of protocol version 2: it runs each call
// of a batch on a goroutine of its own, as gRPC runs unary calls, handing
// it to a worker left idle by an earlier call when there is one (a new
// goroutine would grow its stack again for every call), and each reply is
// sent by the goroutine that made it, with the replies made while the
// stream was busy sending in the same message (combiner).
type streamServer struct {
	factorpb.UnimplementedFactorStreamServer
	unary *grpcServer
}

var _ factorpb.FactorStreamServer = (*streamServer)(nil)

// errHungUp stops the replies of calls still running when the host has
// gone; they have nobody to go to.
var errHungUp = errors.New("the host closed the stream")

func (s *streamServer) Calls(stream factorpb.FactorStream_CallsServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	out := newCombiner(func(replies []*factorpb.Reply) error {
		return stream.Send(&factorpb.ReplyBatch{Replies: replies})
	})
	work := make(chan *factorpb.Call) // idle workers wait on it
	for {
		b, err := stream.Recv()
		if err != nil {
			cancel() // drop what is still running
			// No send may start once this returns, nor be under way.
			out.close(errHungUp)
			return nil
		}
		for _, c := range b.GetCalls() {
			select {
			case work <- c: // an idle worker takes it
			default:
				go s.worker(ctx, cancel, out, work, c)
			}
		}
	}
}

// workerIdle is how long a worker waits for another call before it ends.
const workerIdle = 10 * time.Second

// worker serves c, then the calls handed to it on work, until it has
// waited workerIdle for one or the stream ends.
func (s *streamServer) worker(ctx context.Context, cancel context.CancelFunc, out *combiner[*factorpb.Reply], work chan *factorpb.Call, c *factorpb.Call) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		if err := out.add(s.serve(ctx, c)); err != nil {
			cancel() // a send failed: the stream is gone
		}
		idle.Reset(workerIdle)
		select {
		case c = <-work:
		case <-idle.C:
			return
		case <-ctx.Done():
			return
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
