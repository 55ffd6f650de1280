package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func TestWebSocketEcho(t *testing.T) {
	ws := httptest.NewServer(websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	t.Cleanup(ws.Close)
	c := snapshot.Cluster{Name: "demo/ws", Mesh: testMesh, Protocol: "http", Port: 80,
		Endpoints: []snapshot.Endpoint{{Address: ws.Listener.Addr().String(), Ready: true}}}
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{c},
		service("ws", snapshot.Route{Name: "demo/ws/main", Targets: targets("ws", 1)})))
	conn, err := net.Dial("tcp", p.Addr("egress").String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	cfg, err := websocket.NewConfig("ws://ws.demo/echo", "http://ws.demo/")
	if err != nil {
		t.Fatal(err)
	}
	client, err := websocket.NewClient(cfg, conn) // the Host header is ws.demo
	if err != nil {
		t.Fatalf("WebSocket handshake through the proxy: %v", err)
	}
	defer client.Close()
	for _, msg := range []string{"hello", "through", "the mesh"} {
		if err := websocket.Message.Send(client, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(client, &got); err != nil || got != msg {
			t.Fatalf("echo of %q: %q %v", msg, got, err)
		}
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_cx_active{envoy_cluster_name="cds_egress_global_ws_demo_http_80"}`); v != "1" {
		t.Errorf("the tunnel's upstream connection is not counted active: %q", v)
	}
}

func TestUpgradeRefusedIsAnsweredNormally(t *testing.T) {
	plain := newBackend(t, "plain", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("plain", plain)},
		service("plain", snapshot.Route{Name: "demo/plain/main", Targets: targets("plain", 1)})))
	got := rawRequest(t, p.Addr("egress"), "GET / HTTP/1.1\r\nHost: plain.demo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if got != "HTTP/1.1 400 Bad Request" {
		t.Fatalf("got %q, want the backend's 400", got)
	}
}

func TestTCPListener(t *testing.T) {
	echo := func(c net.Conn) { io.Copy(c, c) }
	a, b := rawBackend(t, echo), rawBackend(t, echo)
	s := &snapshot.Snapshot{Version: 1, Node: snapshot.EgressNode, Clusters: []snapshot.Cluster{
		{Name: "demo/a", Protocol: "tcp", Port: 9000, Endpoints: []snapshot.Endpoint{{Address: a, Ready: true}}},
		{Name: "demo/b", Protocol: "tcp", Port: 9000, Endpoints: []snapshot.Endpoint{{Address: b, Ready: true}}},
	}, Listeners: []snapshot.Listener{{Name: "tcp-9000", Kind: snapshot.Egress, Protocol: "tcp", Port: 9000,
		VirtualHosts: []snapshot.VirtualHost{{Name: "demo/db", Domains: []string{"*"},
			Routes: []snapshot.Route{{Name: "demo/db/main", Protocol: "tcp", Targets: targets("a", 1, "b", 1)}}}}}}}
	p := startProxy(t, s)
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", p.Addr("tcp-9000").String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "ping")
		c.(*net.TCPConn).CloseWrite() // the half-close reaches the backend, which ends its echo
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "ping" {
			t.Fatalf("connection %d: %q %v", i, got, err)
		}
	}
	for _, name := range []string{"cds_egress_a_demo_tcp_9000", "cds_egress_b_demo_tcp_9000"} {
		if v := metricValue(t, p, `envoy_cluster_upstream_cx_total{envoy_cluster_name="`+name+`"}`); v != "2" {
			t.Errorf("%s opened %q connections, want 2 (weights 1:1)", name, v)
		}
	}
}
