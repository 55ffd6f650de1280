package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// testCA is a certificate authority made for one test, its files in a temporary
// directory.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
	pool *x509.CertPool
}

var serial int64

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	ca.file = filepath.Join(ca.dir, name+"-ca.pem")
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a certificate for the DNS names and its key as NAME.pem and NAME-key.pem
// and returns their paths.
func (ca *testCA) issue(name string, dnsNames ...string) (chain, keyFile string) {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(t, chain, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return chain, keyFile
}

func (ca *testCA) keyPair(name string, dnsNames ...string) tls.Certificate {
	chain, key := ca.issue(name, dnsNames...)
	c, err := tls.LoadX509KeyPair(chain, key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return c
}

// ingressTLS is an ingress node whose listener "ingress-8080" has tlsSpec and delivers
// to app.
func ingressTLS(app *backend, tlsSpec *snapshot.ListenerTLS) *snapshot.Snapshot {
	local := cluster("app", app)
	local.Name = snapshot.LocalClusterPrefix + "demo/app"
	return &snapshot.Snapshot{Version: 1, Node: "VirtualNode/demo/app", Clusters: []snapshot.Cluster{local},
		Listeners: []snapshot.Listener{{Name: "ingress-8080", Kind: snapshot.Ingress, Protocol: "http", Port: 8080,
			LocalCluster: local.Name, TLS: tlsSpec}}}
}

// tlsGet sends GET / over TLS to addr, trusting ca, presenting cert when set; it
// returns the body or the error.
func tlsGet(addr net.Addr, ca *testCA, h2 bool, certs ...tls.Certificate) (string, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "app.demo", Certificates: certs},
		ForceAttemptHTTP2: h2}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr.String() + "/")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if h2 && res.ProtoMajor != 2 {
		return "", &net.AddrError{Err: "not HTTP/2: " + res.Proto, Addr: addr.String()}
	}
	return res.Status + " " + string(b), err
}

// plainGet sends GET / in plaintext to addr and returns the status line, or the error.
func plainGet(addr net.Addr) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.demo\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if len(b) == 0 {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line, nil
}

func TestListenerTLSStrict(t *testing.T) {
	ca := newTestCA(t, "mesh")
	chain, key := ca.issue("app", "app.demo")
	app := newBackend(t, "app", nil)
	p := startProxy(t, ingressTLS(app, &snapshot.ListenerTLS{Mode: snapshot.TLSStrict, CertificateChain: chain, PrivateKey: key}))
	addr := p.Addr("ingress-8080")

	if line, err := plainGet(addr); err == nil && strings.Contains(line, " 200 ") {
		t.Fatalf("plaintext request on a STRICT listener was served: %s", line)
	}
	if n := app.hits.Load(); n != 0 {
		t.Fatalf("the application got %d plaintext requests", n)
	}
	got, err := tlsGet(addr, ca, false)
	if err != nil || got != "200 OK app" {
		t.Fatalf("TLS request: %q, %v", got, err)
	}
	if got, err := tlsGet(addr, ca, true); err != nil || got != "200 OK app" {
		t.Fatalf("TLS request over HTTP/2: %q, %v", got, err)
	}
}

func TestListenerTLSPermissive(t *testing.T) {
	ca := newTestCA(t, "mesh")
	chain, key := ca.issue("app", "app.demo")
	app := newBackend(t, "app", nil)
	p := startProxy(t, ingressTLS(app, &snapshot.ListenerTLS{Mode: snapshot.TLSPermissive, CertificateChain: chain, PrivateKey: key}))
	addr := p.Addr("ingress-8080")

	if line, err := plainGet(addr); err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("plaintext request: %q, %v", line, err)
	}
	if got, err := tlsGet(addr, ca, false); err != nil || got != "200 OK app" {
		t.Fatalf("TLS request: %q, %v", got, err)
	}
	if got, err := tlsGet(addr, ca, true); err != nil || got != "200 OK app" {
		t.Fatalf("TLS request over HTTP/2: %q, %v", got, err)
	}
	if n := app.hits.Load(); n != 3 {
		t.Fatalf("the application got %d requests, want 3", n)
	}
}

func TestListenerMutualTLS(t *testing.T) {
	ca, other := newTestCA(t, "mesh"), newTestCA(t, "other")
	chain, key := ca.issue("app", "app.demo")
	app := newBackend(t, "app", nil)
	p := startProxy(t, ingressTLS(app, &snapshot.ListenerTLS{Mode: snapshot.TLSStrict, CertificateChain: chain, PrivateKey: key,
		Validation: &snapshot.TLSValidation{TrustChain: ca.file, SubjectAlternativeNames: []string{"client.demo"}}}))
	addr := p.Addr("ingress-8080")

	if got, err := tlsGet(addr, ca, false); err == nil {
		t.Fatalf("a client without a certificate was served: %q", got)
	}
	if got, err := tlsGet(addr, ca, false, other.keyPair("stranger", "client.demo")); err == nil {
		t.Fatalf("a client with a certificate of another authority was served: %q", got)
	}
	if got, err := tlsGet(addr, ca, false, ca.keyPair("intruder", "intruder.demo")); err == nil {
		t.Fatalf("a client with a certificate of the wrong name was served: %q", got)
	}
	if n := app.hits.Load(); n != 0 {
		t.Fatalf("the application got %d requests from refused clients", n)
	}
	if got, err := tlsGet(addr, ca, false, ca.keyPair("client", "client.demo")); err != nil || got != "200 OK app" {
		t.Fatalf("client with its certificate: %q, %v", got, err)
	}
}

// A listener whose certificate cannot be had serves nothing on STRICT, and plaintext
// only on PERMISSIVE.
func TestListenerTLSUnavailable(t *testing.T) {
	ca := newTestCA(t, "mesh")
	app := newBackend(t, "app", nil)
	strict := startProxy(t, ingressTLS(app, &snapshot.ListenerTLS{Mode: snapshot.TLSStrict, Unavailable: "from sds"}))
	missing := startProxy(t, ingressTLS(app, &snapshot.ListenerTLS{Mode: snapshot.TLSStrict,
		CertificateChain: filepath.Join(ca.dir, "gone.pem"), PrivateKey: filepath.Join(ca.dir, "gone-key.pem")}))
	for _, p := range []*Proxy{strict, missing} {
		addr := p.Addr("ingress-8080")
		if got, err := tlsGet(addr, ca, false); err == nil {
			t.Fatalf("TLS request served without a certificate: %q", got)
		}
		if line, err := plainGet(addr); err == nil && strings.Contains(line, " 200 ") {
			t.Fatalf("plaintext request served: %s", line)
		}
	}
	if n := app.hits.Load(); n != 0 {
		t.Fatalf("the application got %d requests", n)
	}
	permissive := startProxy(t, ingressTLS(app, &snapshot.ListenerTLS{Mode: snapshot.TLSPermissive, Unavailable: "from acm"}))
	if line, err := plainGet(permissive.Addr("ingress-8080")); err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("plaintext request on PERMISSIVE: %q, %v", line, err)
	}
}

// A listener presents its new certificate once the files change.
func TestListenerTLSReload(t *testing.T) {
	ca := newTestCA(t, "mesh")
	chain, key := ca.issue("app", "app.demo")
	app := newBackend(t, "app", nil)
	p := startProxy(t, ingressTLS(app, &snapshot.ListenerTLS{Mode: snapshot.TLSStrict, CertificateChain: chain, PrivateKey: key}))
	addr := p.Addr("ingress-8080")
	if _, err := tlsGet(addr, ca, false); err != nil {
		t.Fatal(err)
	}
	ca.issue("app", "renewed.app.demo") // the same files, a new certificate
	c, err := tls.Dial("tcp", addr.String(), &tls.Config{RootCAs: ca.pool, ServerName: "renewed.app.demo"})
	if err != nil {
		t.Fatalf("the renewed certificate is not served: %v", err)
	}
	c.Close()
}

// tlsBackend is an HTTPS server whose certificate, from ca, names dnsNames; it requires
// a client certificate from ca when mutual is set.
func tlsBackend(t *testing.T, ca *testCA, mutual bool, dnsNames ...string) *backend {
	b := &backend{name: "secure"}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, "secure")
	}))
	b.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.keyPair("backend", dnsNames...)}}
	if mutual {
		b.srv.TLS.ClientAuth, b.srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, ca.pool
	}
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	return b
}

func TestClusterTLS(t *testing.T) {
	ca, other := newTestCA(t, "mesh"), newTestCA(t, "other")
	clientChain, clientKey := ca.issue("client", "client.demo")
	secure := tlsBackend(t, ca, true, "web.demo")
	tests := []struct {
		name string
		tls  snapshot.ClientTLS
		ok   bool
	}{
		{"trusted, right name, client certificate", snapshot.ClientTLS{SNI: "web.demo",
			Validation:       snapshot.TLSValidation{TrustChain: ca.file, SubjectAlternativeNames: []string{"web.demo"}},
			CertificateChain: clientChain, PrivateKey: clientKey}, true},
		{"no name to match", snapshot.ClientTLS{Validation: snapshot.TLSValidation{TrustChain: ca.file},
			CertificateChain: clientChain, PrivateKey: clientKey}, true},
		{"wrong name", snapshot.ClientTLS{Validation: snapshot.TLSValidation{TrustChain: ca.file, SubjectAlternativeNames: []string{"db.demo"}},
			CertificateChain: clientChain, PrivateKey: clientKey}, false},
		{"other authority", snapshot.ClientTLS{Validation: snapshot.TLSValidation{TrustChain: other.file},
			CertificateChain: clientChain, PrivateKey: clientKey}, false},
		{"no client certificate", snapshot.ClientTLS{Validation: snapshot.TLSValidation{TrustChain: ca.file}}, false},
		{"unavailable", snapshot.ClientTLS{Unavailable: "from acm"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := secure.hits.Load()
			cl := cluster("web", secure)
			cl.TLS = &tt.tls
			p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cl},
				service("web", snapshot.Route{Name: "r", Protocol: "http", Targets: targets("web", 100)})))
			code, body := get(t, p, "web.demo", "/")
			served := secure.hits.Load() - before
			if tt.ok && (code != 200 || body != "secure" || served != 1) {
				t.Fatalf("got %d %q (%d served), want 200 secure", code, body, served)
			}
			if n := handoffs(p, "egress"); n != 1 {
				t.Fatalf("%d connections went to net/http, want 1: a TLS cluster is not the fast path's", n)
			}
			if !tt.ok && (code < 500 || served != 0) {
				t.Fatalf("got %d %q (%d served), want a refusal", code, body, served)
			}
		})
	}
}

// A plain backend behind a cluster that asks for TLS is never sent plaintext.
func TestClusterTLSPlainBackend(t *testing.T) {
	ca := newTestCA(t, "mesh")
	plain := newBackend(t, "plain", nil)
	cl := cluster("web", plain)
	cl.TLS = &snapshot.ClientTLS{Validation: snapshot.TLSValidation{TrustChain: ca.file}}
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cl},
		service("web", snapshot.Route{Name: "r", Protocol: "http", Targets: targets("web", 100)})))
	if code, body := get(t, p, "web.demo", "/"); code < 500 {
		t.Fatalf("got %d %q, want a refusal", code, body)
	}
	if n := plain.hits.Load(); n != 0 {
		t.Fatalf("the plain backend got %d requests", n)
	}
}

// A TCP listener terminates TLS too: a STRICT one relays what arrives over TLS to the
// application in plaintext.
func TestTCPListenerTLS(t *testing.T) {
	ca := newTestCA(t, "mesh")
	chain, key := ca.issue("app", "app.demo")
	echo := rawBackend(t, func(c net.Conn) { io.Copy(c, c) })
	local := snapshot.Cluster{Name: snapshot.LocalClusterPrefix + "demo/db", Protocol: "tcp", Port: 5432,
		Endpoints: []snapshot.Endpoint{{Address: echo, Ready: true}}}
	p := startProxy(t, &snapshot.Snapshot{Version: 1, Node: "VirtualNode/demo/db", Clusters: []snapshot.Cluster{local},
		Listeners: []snapshot.Listener{{Name: "ingress-5432", Kind: snapshot.Ingress, Protocol: "tcp", Port: 5432,
			LocalCluster: local.Name, TLS: &snapshot.ListenerTLS{Mode: snapshot.TLSStrict, CertificateChain: chain, PrivateKey: key}}}})
	c, err := tls.Dial("tcp", p.Addr("ingress-5432").String(), &tls.Config{RootCAs: ca.pool, ServerName: "app.demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}
