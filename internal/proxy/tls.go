package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// TLS of the mesh (snapshot.ListenerTLS, snapshot.ClientTLS), from PEM files on this host.
//
// Listeners: STRICT terminates TLS on every connection; PERMISSIVE reads the first byte
// of each connection and terminates TLS when it starts a handshake (0x16), serving the
// connection in plaintext otherwise. Both are served by net/http, never by the fast
// path. With validation, a client certificate is required and checked.
//
// Clusters: every connection to an endpoint is wrapped in TLS right after it is dialled,
// before net/http's transport or a TCP tunnel writes to it; the endpoint's certificate
// is checked against the trusted chain and the SANs. Such clusters are served by
// net/http's front end, never by the fast path (fastExchange.eligible).
//
// Files are read again when their size or modification time changes, which is checked
// at every handshake; a snapshot builds its TLS anew, so it reads them again too. A
// certificate that cannot be loaded fails the handshake: a STRICT listener then serves
// nothing and a cluster gets no connection, rather than plaintext.

// sniffTimeout bounds how long a PERMISSIVE listener waits for a client's first byte;
// a client that says nothing by then is served in plaintext (a server-first protocol).
const sniffTimeout = 5 * time.Second

// recordTypeHandshake is the first byte of every TLS connection (a handshake record).
const recordTypeHandshake = 0x16

// reloading is something parsed from files, parsed again when one of them changes.
type reloading[T any] struct {
	paths []string
	parse func(data [][]byte) (T, error)

	mu     sync.Mutex
	stamps []fileStamp
	val    T
	err    error
}

type fileStamp struct {
	size, mod int64
}

func (r *reloading[T]) get() (T, error) {
	var zero T
	stamps := make([]fileStamp, len(r.paths))
	for i, p := range r.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return zero, err
		}
		stamps[i] = fileStamp{size: fi.Size(), mod: fi.ModTime().UnixNano()}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stamps != nil && slices.Equal(stamps, r.stamps) {
		return r.val, r.err
	}
	data := make([][]byte, len(r.paths))
	for i, p := range r.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return zero, err
		}
		data[i] = b
	}
	r.val, r.err = r.parse(data)
	r.stamps = stamps
	return r.val, r.err
}

func newKeyPair(chain, key string) *reloading[*tls.Certificate] {
	return &reloading[*tls.Certificate]{paths: []string{chain, key}, parse: func(d [][]byte) (*tls.Certificate, error) {
		c, err := tls.X509KeyPair(d[0], d[1])
		if err != nil {
			return nil, fmt.Errorf("certificate %s with key %s: %w", chain, key, err)
		}
		return &c, nil
	}}
}

func newTrust(chain string) *reloading[*x509.CertPool] {
	return &reloading[*x509.CertPool]{paths: []string{chain}, parse: func(d [][]byte) (*x509.CertPool, error) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(d[0]) {
			return nil, fmt.Errorf("trusted chain %s: no PEM certificate in it", chain)
		}
		return pool, nil
	}}
}

// verifyPeer checks a peer's chain against roots and, when sans is set, that its
// certificate carries one of those names. The host name is not checked otherwise.
func verifyPeer(certs []*x509.Certificate, roots *x509.CertPool, sans []string) error {
	if len(certs) == 0 {
		return errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return err
	}
	if len(sans) == 0 {
		return nil
	}
	names := slices.Concat(leaf.DNSNames, leaf.EmailAddresses)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	for _, u := range leaf.URIs {
		names = append(names, u.String())
	}
	for _, want := range sans {
		if slices.Contains(names, want) {
			return nil
		}
	}
	return fmt.Errorf("the peer's certificate (names %v) carries none of the subject alternative names %v", names, sans)
}

// listenerTLSConfig is the server side of a listener's TLS.
func listenerTLSConfig(t *snapshot.ListenerTLS) *tls.Config {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.Unavailable != "" {
		err := errors.New(t.Unavailable)
		conf.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, err }
		return conf
	}
	pair := newKeyPair(t.CertificateChain, t.PrivateKey)
	conf.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair.get() }
	if v := t.Validation; v != nil {
		trust, sans := newTrust(v.TrustChain), v.SubjectAlternativeNames
		conf.ClientAuth = tls.RequireAnyClientCert
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			roots, err := trust.get()
			if err != nil {
				return err
			}
			return verifyPeer(cs.PeerCertificates, roots, sans)
		}
	}
	return conf
}

// listenerTLS is the TLS a listener serves and its mesh mode: the snapshot's, else
// Options.TLS's (mode "").
func (p *Proxy) listenerTLS(spec snapshot.Listener) (*tls.Config, string) {
	if spec.TLS != nil {
		return listenerTLSConfig(spec.TLS), spec.TLS.Mode
	}
	return p.tlsFor(spec), ""
}

// meshTLSListener terminates a listener's TLS as its mode says.
type meshTLSListener struct {
	net.Listener
	permissive bool
	conf       func() *tls.Config

	conns  chan net.Conn // PERMISSIVE: connections whose first byte was read
	done   chan struct{}
	once   sync.Once
	failed chan struct{} // closed when accepting failed for good
	err    error
}

func newMeshTLSListener(ln net.Listener, mode string, conf func() *tls.Config) *meshTLSListener {
	l := &meshTLSListener{Listener: ln, permissive: mode == snapshot.TLSPermissive, conf: conf,
		conns: make(chan net.Conn), done: make(chan struct{}), failed: make(chan struct{})}
	if l.permissive {
		go l.acceptLoop()
	}
	return l
}

func (l *meshTLSListener) Accept() (net.Conn, error) {
	if !l.permissive {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		return tls.Server(c, l.conf()), nil
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.failed:
		return nil, l.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *meshTLSListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// acceptLoop accepts for a PERMISSIVE listener; each connection's first byte is awaited
// on its own goroutine, so that a silent client holds up no other.
func (l *meshTLSListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.err = err
				close(l.failed)
				return
			}
			select { // out of file descriptors, say: try again shortly
			case <-time.After(10 * time.Millisecond):
				continue
			case <-l.done:
				return
			}
		}
		go l.sniff(c)
	}
}

func (l *meshTLSListener) sniff(c net.Conn) {
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	n, err := c.Read(b[:])
	c.SetReadDeadline(time.Time{})
	var out net.Conn
	var ne net.Error
	switch {
	case n == 1 && b[0] == recordTypeHandshake:
		out = tls.Server(&prefixConn{Conn: c, first: b[:1]}, l.conf())
	case n == 1:
		out = &prefixConn{Conn: c, first: b[:1]}
	case errors.As(err, &ne) && ne.Timeout():
		out = c
	default:
		c.Close()
		return
	}
	select {
	case l.conns <- out:
	case <-l.done:
		out.Close()
	}
}

// prefixConn gives back the bytes read from a connection before the rest of it.
type prefixConn struct {
	net.Conn
	first []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection, for TCP tunnels.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// clientTLS is the TLS an upstream speaks to its endpoints.
type clientTLS struct {
	spec  snapshot.ClientTLS
	trust *reloading[*x509.CertPool]
	pair  *reloading[*tls.Certificate] // nil: no client certificate
	proto string
}

func newClientTLS(t *snapshot.ClientTLS, protocol string) *clientTLS {
	if t == nil {
		return nil
	}
	c := &clientTLS{spec: *t, proto: protocol}
	if t.Unavailable != "" {
		return c
	}
	c.trust = newTrust(t.Validation.TrustChain)
	if t.CertificateChain != "" {
		c.pair = newKeyPair(t.CertificateChain, t.PrivateKey)
	}
	return c
}

// alpn is what a client speaking protocol offers: it speaks that protocol on the
// connection whatever is negotiated, so it offers nothing else.
func alpn(protocol string) []string {
	switch protocol {
	case "http":
		return []string{"http/1.1"}
	case "http2", "grpc":
		return []string{"h2"}
	}
	return nil
}

func (c *clientTLS) config(protocol string) (*tls.Config, error) {
	if c.spec.Unavailable != "" {
		return nil, errors.New(c.spec.Unavailable)
	}
	roots, err := c.trust.get()
	if err != nil {
		return nil, err
	}
	sans := c.spec.Validation.SubjectAlternativeNames
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12, ServerName: c.spec.SNI, NextProtos: alpn(protocol),
		// The chain and SANs are checked below, as App Mesh checks them: the server
		// name is what is sent, not what the certificate must be issued for.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs.PeerCertificates, roots, sans)
		},
	}
	if c.pair != nil {
		cert, err := c.pair.get()
		if err != nil {
			return nil, err
		}
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return conf, nil
}

// handshake wraps a dialled connection in the upstream's TLS, for a client speaking
// protocol on it.
func (c *clientTLS) handshake(ctx context.Context, conn net.Conn, addr, protocol string) (net.Conn, error) {
	conf, err := c.config(protocol)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS to %s: %w", addr, err)
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS to %s: %w", addr, err)
	}
	return tc, nil
}
