package proxy

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// testService echoes payloads; a request carrying ResponseStatus fails with it, and the
// first `failFirst` calls fail with UNAVAILABLE.
type testService struct {
	testpb.UnimplementedTestServiceServer
	failFirst atomic.Int64
}

func (s *testService) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s.failFirst.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "warming up")
	}
	if st := in.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

func (s *testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

func startGRPC(t *testing.T) (string, *testService, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc := &testService{}
	hs := health.NewServer()
	testpb.RegisterTestServiceServer(srv, svc)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), svc, hs
}

func TestGRPCThroughProxy(t *testing.T) {
	addr, svc, hs := startGRPC(t)
	c := snapshot.Cluster{Name: "demo/grpc", Mesh: testMesh, Protocol: "grpc", Port: 8080,
		Endpoints:   []snapshot.Endpoint{{Address: addr, Ready: true}},
		HealthCheck: &snapshot.HealthCheck{Protocol: "grpc", Interval: 20 * time.Millisecond, Timeout: time.Second}}
	s := egressSnapshot(1, []snapshot.Cluster{c}, service("grpc", snapshot.Route{Name: "demo/grpc/main", Protocol: "grpc",
		Match:   snapshot.Match{GRPCService: "grpc.testing.TestService"},
		Targets: targets("grpc", 1),
		Retry:   &snapshot.RetryPolicy{MaxRetries: 2, GRPCEvents: []string{"unavailable"}}}))
	s.Listeners[0].Protocol = "grpc"
	p := startProxy(t, s)
	conn, err := grpc.NewClient(p.Addr("egress").String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("grpc.demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	ctx := ctxTimeout(t, 10*time.Second)

	payload := &testpb.Payload{Body: []byte("hello")}
	res, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: payload})
	if err != nil || string(res.GetPayload().GetBody()) != "hello" {
		t.Fatalf("unary call: %v %v", res, err)
	}

	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "no such thing" {
		t.Fatalf("the gRPC status must pass through, got %v", err)
	}

	svc.failFirst.Store(1)
	if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: payload}); err != nil {
		t.Fatalf("an UNAVAILABLE must be retried (grpcEvents unavailable): %v", err)
	}

	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"one", "two", "three"} {
		if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
			t.Fatal(err)
		}
		got, err := stream.Recv()
		if err != nil || string(got.GetPayload().GetBody()) != msg {
			t.Fatalf("stream echo of %q: %v %v", msg, got, err)
		}
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("stream end: %v", err)
	}

	const cn = `envoy_cluster_name="cds_egress_global_grpc_demo_grpc_8080"`
	if v := metricValue(t, p, `envoy_cluster_upstream_rq{envoy_response_code="404",`+cn+`}`); v != "1" {
		t.Errorf("a NOT_FOUND call must count as 404, got %q", v)
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_rq_retry{`+cn+`}`); v != "1" {
		t.Errorf("retries = %q, want 1", v)
	}

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, "a NOT_SERVING endpoint is marked unhealthy", func() bool {
		return metricValue(t, p, `envoy_cluster_membership_healthy{`+cn+`}`) == "0"
	})
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: payload})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("with no healthy endpoint the proxy answers UNAVAILABLE, got %v", err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	eventually(t, "a SERVING endpoint is healthy again", func() bool {
		return metricValue(t, p, `envoy_cluster_membership_healthy{`+cn+`}`) == "1"
	})
}
