package sdk

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyfleet/keyfleet/plugins/sdk/internal/factorpb"
)

// streamClient is the host side of protocol version 2: Describe goes over
// the version 1 service, every other call over one FactorStream.Calls
// stream opened at the first call and kept for the life of the
// connection. A caller sends its call itself, with those made while the
// stream was busy sending in the same message (combiner); a receiver
// goroutine hands each reply to its caller. When the stream fails (the
// plugin process died), every call waiting and every later one fails
// with an error wrapping ErrUnavailable whose RemoteError.Code is
// codes.Unavailable, as a unary call's would: the host then restarts the
// process and makes a new client.
type streamClient struct {
	unary factorpb.FactorClient
	conn  grpc.ClientConnInterface

	once sync.Once
	out  *combiner[*factorpb.Call] // set by open unless the stream failed to open

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *factorpb.Reply
	err     error // why the stream failed; guarded by mu
}

var _ Factor = (*streamClient)(nil)

func newStreamClient(conn grpc.ClientConnInterface) *streamClient {
	return &streamClient{unary: factorpb.NewFactorClient(conn), conn: conn, pending: map[uint64]chan *factorpb.Reply{}}
}

// open starts the stream and its receiver, once.
func (c *streamClient) open() {
	c.once.Do(func() {
		stream, err := factorpb.NewFactorStreamClient(c.conn).Calls(context.Background())
		if err != nil {
			c.fail(err)
			return
		}
		c.out = newCombiner(func(calls []*factorpb.Call) error {
			return stream.Send(&factorpb.CallBatch{Calls: calls})
		})
		go c.receive(stream)
	})
}

func (c *streamClient) receive(stream factorpb.FactorStream_CallsClient) {
	for {
		b, err := stream.Recv()
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		for _, r := range b.GetReplies() {
			if ch, ok := c.pending[r.GetId()]; ok {
				delete(c.pending, r.GetId())
				ch <- r
			}
		}
		c.mu.Unlock()
	}
}

// fail ends the stream: every waiting call gets err, and so does every
// later one.
func (c *streamClient) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = status.Error(codes.Unavailable, "the plugin's call stream ended: "+status.Convert(err).Message())
	for id, ch := range c.pending {
		delete(c.pending, id)
		ch <- &factorpb.Reply{Id: id, Response: errorReply(c.err)}
	}
}

func errorReply(err error) *factorpb.Reply_Error {
	st := status.Convert(err)
	return &factorpb.Reply_Error{Error: &factorpb.Error{Code: int32(st.Code()), Message: st.Message()}}
}

// call sends one call and waits for its reply, or for ctx to end.
func (c *streamClient) call(ctx context.Context, call *factorpb.Call) (*factorpb.Reply, error) {
	c.open()
	if d, ok := ctx.Deadline(); ok {
		call.TimeoutMs = max(time.Until(d).Milliseconds(), 1)
	}
	ch := make(chan *factorpb.Reply, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fromStatus(err)
	}
	c.next++
	call.Id = c.next
	c.pending[call.Id] = ch
	c.mu.Unlock()
	if err := c.out.add(call); err != nil {
		c.fail(err) // the call gets the stream's error through ch
	}
	select {
	case r := <-ch:
		if e := r.GetError(); e != nil {
			return nil, fromStatus(status.Error(codes.Code(e.GetCode()), e.GetMessage()))
		}
		return r, nil
	case <-ctx.Done():
		return nil, c.abandon(ctx, call.Id)
	}
}

// abandon forgets a call whose caller gave up; its reply, if it comes,
// is dropped.
func (c *streamClient) abandon(ctx context.Context, id uint64) error {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
	return fromStatus(status.FromContextError(ctx.Err()).Err())
}

func (c *streamClient) Describe(ctx context.Context) (Info, error) {
	return (&grpcClient{c: c.unary}).Describe(ctx)
}

func (c *streamClient) BeginEnrol(ctx context.Context, req BeginEnrolRequest) (BeginEnrolResponse, error) {
	r, err := c.call(ctx, &factorpb.Call{Request: &factorpb.Call_BeginEnrol{BeginEnrol: toBeginEnrol(req)}})
	if err != nil {
		return BeginEnrolResponse{}, err
	}
	return fromBeginEnrol(r.GetBeginEnrol()), nil
}

func (c *streamClient) FinishEnrol(ctx context.Context, req FinishEnrolRequest) (FinishEnrolResponse, error) {
	r, err := c.call(ctx, &factorpb.Call{Request: &factorpb.Call_FinishEnrol{FinishEnrol: toFinishEnrol(req)}})
	if err != nil {
		return FinishEnrolResponse{}, err
	}
	return fromFinishEnrol(r.GetFinishEnrol()), nil
}

func (c *streamClient) BeginVerify(ctx context.Context, req BeginVerifyRequest) (BeginVerifyResponse, error) {
	r, err := c.call(ctx, &factorpb.Call{Request: &factorpb.Call_BeginVerify{BeginVerify: toBeginVerify(req)}})
	if err != nil {
		return BeginVerifyResponse{}, err
	}
	return fromBeginVerify(r.GetBeginVerify()), nil
}

func (c *streamClient) FinishVerify(ctx context.Context, req FinishVerifyRequest) (FinishVerifyResponse, error) {
	r, err := c.call(ctx, &factorpb.Call{Request: &factorpb.Call_FinishVerify{FinishVerify: toFinishVerify(req)}})
	if err != nil {
		return FinishVerifyResponse{}, err
	}
	return fromFinishVerify(r.GetFinishVerify()), nil
}
