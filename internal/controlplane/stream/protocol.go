package stream

import (
	"encoding/json"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/keepalive"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Names on the wire.
const (
	// ServiceName is the gRPC service of the push stream.
	ServiceName = "canarymesh.stream.v1.SnapshotService"
	// StreamMethod is the full method name of its one bidirectional RPC.
	StreamMethod = "/" + ServiceName + "/Stream"
	// codecName is the gRPC content-subtype: application/grpc+canarymesh-json.
	codecName = "canarymesh-json"
)

// ProxyMessage is what a proxy sends; exactly one field is set. The first message of a
// stream is a Hello, every later one an Ack or a Nack.
type ProxyMessage struct {
	Hello *Hello `json:"hello,omitempty"`
	Ack   *Ack   `json:"ack,omitempty"`
	Nack  *Nack  `json:"nack,omitempty"`
}

// Hello opens a stream. The token travels as per-RPC metadata ("authorization: Bearer
// T"), not here, so that it is checked before anything is decoded.
type Hello struct {
	// Node is the snapshot node the proxy serves, e.g. "VirtualNode/NS/NAME".
	Node string `json:"node"`
	// ProxyVersion is the proxy's build version, shown in the proxy status.
	ProxyVersion string `json:"proxyVersion,omitempty"`
	// LastVersion is the snapshot version the proxy runs now (0: none). The server does
	// not push a snapshot of that version again.
	LastVersion uint64 `json:"lastVersion,omitempty"`
}

// Ack says the proxy applied Version and now runs it.
type Ack struct {
	Version uint64 `json:"version"`
}

// Nack says the proxy rejected Version and still runs what it ran before.
type Nack struct {
	Version uint64 `json:"version"`
	Reason  string `json:"reason"`
}

// Push carries a whole snapshot from the control plane to a proxy.
type Push struct {
	Snapshot *snapshot.Snapshot `json:"snapshot"`
}

// maxNackReason bounds the reason the server keeps, so a proxy cannot fill its memory.
const maxNackReason = 4 << 10

// maxSnapshotBytes bounds a pushed snapshot as the client receives it; an egress snapshot
// of a large mesh exceeds gRPC's 4 MiB default.
const maxSnapshotBytes = 256 << 20

// Keepalive: the client pings an idle connection every clientPingEvery and gives up on it
// after pingTimeout without an answer; the server does the same from its side, and
// tolerates client pings no more often than minPingInterval.
const (
	clientPingEvery = 20 * time.Second
	serverPingEvery = 30 * time.Second
	pingTimeout     = 10 * time.Second
	minPingInterval = 10 * time.Second
)

// ServerOptions are the gRPC server options the push stream needs: keepalive pings that
// notice dead proxies, and an enforcement policy that admits the clients' pings. Pass
// them to grpc.NewServer for the server Register is called with.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: serverPingEvery, Timeout: pingTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             minPingInterval,
			PermitWithoutStream: true,
		}),
	}
}

// encodedPush is a Push already encoded once for all connections of a node, so a fan-out
// to many proxies costs one encoding.
type encodedPush struct {
	snap *snapshot.Snapshot
	data []byte
}

// encodePush makes the message json.Marshal(Push{Snapshot: s}) would, from the
// snapshot's encoding.
func encodePush(s *snapshot.Snapshot, enc snapshot.Encoding) *encodedPush {
	const head, tail = `{"snapshot":`, `}`
	data := make([]byte, 0, len(head)+len(`{"version":`)+20+len(enc)+len(tail))
	data = append(data, head...)
	data = enc.AppendJSON(data, s.Version)
	data = append(data, tail...)
	return &encodedPush{snap: s, data: data}
}

// jsonCodec encodes messages as JSON. An *encodedPush is sent as it is.
type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error) {
	if p, ok := v.(*encodedPush); ok {
		return p.data, nil
	}
	return json.Marshal(v)
}

func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func (jsonCodec) Name() string { return codecName }

func init() {
	// gRPC finds a server's codec by the content-subtype the client names, so the codec
	// has to be in gRPC's registry; registering is only allowed during initialisation.
	encoding.RegisterCodec(jsonCodec{})
}

// streamHandler is what the hand-written service description dispatches to.
type streamHandler interface {
	serveStream(grpc.ServerStream) error
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*streamHandler)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName: "Stream",
		Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(streamHandler).serveStream(stream)
		},
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "canarymesh/stream",
}
