package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsMeshYAML is a backend served over mutual TLS by its sidecar and a frontend that
// calls it, as App Mesh users write them; the test fills in the upper-case placeholders.
const tlsMeshYAML = `apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: tlsdemo}
spec: {namespaceSelector: {}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: Workload
metadata: {name: backend, namespace: demo}
spec:
  replicas: 1
  port: APP_PORT
  command: [canarymesh, demo-app]
  args: [--version, "4.2.0"]
  labels: {app: backend}
  readinessProbe:
    httpGet: {path: /readyz}
    periodSeconds: 1
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: backend, namespace: demo}
spec:
  listeners:
    - portMapping: {port: APP_PORT, protocol: http}
      tls:
        mode: STRICT
        certificate:
          CERTIFICATE
        validation:
          trust: {file: {certificateChain: MESH_CA}}
  serviceDiscovery:
    static: [{address: 127.0.0.1, port: INGRESS_PORT}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: backend, namespace: demo}
spec:
  provider: {virtualNode: {virtualNodeRef: {name: backend}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: frontend, namespace: demo}
spec:
  backends:
    - virtualService: {virtualServiceRef: {name: backend}}
  backendDefaults:
    clientPolicy:
      tls:
        certificate: {file: {certificateChain: CLIENT_CERT, privateKey: CLIENT_KEY}}
        validation:
          trust: {file: {certificateChain: TRUST}}
          subjectAlternativeNames: {match: {exact: [backend.demo.svc.cluster.local]}}
`

// tlsFiles are PEM files written for one test: two authorities, and a server and a
// client certificate issued by the first.
type tlsFiles struct {
	ca, otherCA, serverCert, serverKey, clientCert, clientKey string
}

func writeTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, string) {
		k := newKey()
		tpl := template(name)
		tpl.IsCA, tpl.BasicConstraintsValid, tpl.KeyUsage = true, true, x509.KeyUsageCertSign
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, k, write(name+".pem", "CERTIFICATE", der)
	}
	issue := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage, dns ...string) (string, string) {
		k := newKey()
		tpl := template(name)
		tpl.DNSNames, tpl.ExtKeyUsage, tpl.KeyUsage = dns, []x509.ExtKeyUsage{usage}, x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", kd)
	}
	var f tlsFiles
	ca, caKey, caPath := newCA("mesh-ca")
	_, _, f.otherCA = newCA("other-ca")
	f.ca = caPath
	f.serverCert, f.serverKey = issue(ca, caKey, "backend", x509.ExtKeyUsageServerAuth, "backend.demo.svc.cluster.local")
	f.clientCert, f.clientKey = issue(ca, caKey, "frontend", x509.ExtKeyUsageClientAuth, "frontend.demo.svc.cluster.local")
	return f
}

// startSidecar runs `canarymesh proxy` for a virtual node, as beside an application.
func startSidecar(t *testing.T, dir, node, ingress, egress string) {
	t.Helper()
	cmd := exec.Command(binary, "--data-dir", dir, "proxy", "--node", node,
		"--ingress-listen", ingress, "--egress-listen", egress, "--admin-listen", freeAddr(t))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s sidecar log:\n%s", node, log.String())
		}
	})
}

// readyCondition is the Ready condition of a virtual node, as `get -o json` prints it.
func readyCondition(t *testing.T, s *server, name string) (status, reason, message string) {
	t.Helper()
	var vn struct {
		Status struct {
			Conditions []struct{ Type, Status, Reason, Message string }
		}
	}
	if err := json.Unmarshal([]byte(s.mustCLI("get", "vn", name, "-n", "demo", "-o", "json")), &vn); err != nil {
		t.Fatal(err)
	}
	for _, c := range vn.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status, c.Reason, c.Message
		}
	}
	return "", "", ""
}

// Given a backend whose sidecar serves its listener over mutual TLS from certificate
// files and a frontend whose client policy trusts the mesh's authority, when the
// frontend calls the backend through its egress listener, then the call reaches the
// backend's application; a plaintext or certificate-less client is refused at the
// backend's listener, a frontend trusting another authority gets errors rather than
// plaintext, and an sds certificate turns the node's Ready to False (TLSUnavailable).
func TestMutualTLSBetweenSidecars(t *testing.T) {
	files := writeTLSFiles(t)
	dir := t.TempDir()
	streamAddr := freeAddr(t)
	s := startUp(t, dir, "--no-proxies", "--stream-listen", streamAddr)
	_, appPort, _ := net.SplitHostPort(freeAddr(t))
	ingress, egress := freeAddr(t), freeAddr(t)
	_, ingressPort, _ := net.SplitHostPort(ingress)

	manifest := filepath.Join(t.TempDir(), "tls.yaml")
	apply := func(certificate, trust string) {
		t.Helper()
		yaml := strings.NewReplacer("APP_PORT", appPort, "INGRESS_PORT", ingressPort, "CERTIFICATE", certificate,
			"CLIENT_CERT", files.clientCert, "CLIENT_KEY", files.clientKey, "TRUST", trust, "MESH_CA", files.ca).Replace(tlsMeshYAML)
		if err := os.WriteFile(manifest, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		s.mustCLI("apply", "-f", manifest)
	}
	fileCert := "{file: {certificateChain: " + files.serverCert + ", privateKey: " + files.serverKey + "}}"
	apply(fileCert, files.ca)

	startSidecar(t, dir, "demo/backend", ingress, freeAddr(t))
	startSidecar(t, dir, "demo/frontend", freeAddr(t), egress)

	call := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+egress+"/version", nil)
		req.Host = "backend.demo"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var code int
	var body string
	waitFor(t, 60*time.Second, "the frontend to reach the backend over TLS", func() bool {
		code, body = call()
		return code == http.StatusOK
	})
	var v struct{ Version string }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Version != "4.2.0" {
		t.Errorf("the backend answered %q, want the demo app's version 4.2.0", body)
	}
	if st, reason, msg := readyCondition(t, s, "backend"); st != "True" {
		t.Errorf("backend Ready %s (%s: %s) with file certificates, want True", st, reason, msg)
	}

	// When a client talks to the backend's listener directly in plaintext, or over TLS
	// without a client certificate, then it never reaches the application.
	resp, err := http.Get("http://" + ingress + "/version")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "4.2.0") {
			t.Errorf("a plaintext request to the STRICT listener got %d %q", resp.StatusCode, b)
		}
	}
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(files.ca)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(caPEM)
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
		ServerName: "backend.demo.svc.cluster.local"}}}
	if resp, err := noCert.Get("https://" + ingress + "/version"); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS client without a certificate got %d from a listener that validates clients", resp.StatusCode)
	}

	// When the frontend trusts another authority, then its calls fail instead of going
	// out in plaintext.
	apply(fileCert, files.otherCA)
	waitFor(t, 30*time.Second, "the frontend to distrust the backend", func() bool {
		code, body = call()
		return code == http.StatusBadGateway || code == http.StatusServiceUnavailable
	})
	for range 5 {
		if code, body := call(); code != http.StatusBadGateway && code != http.StatusServiceUnavailable {
			t.Errorf("with an untrusted backend certificate the frontend got %d %q, want 502 or 503", code, body)
		}
	}

	// When the backend's certificate comes from sds, which cannot be loaded here, then
	// the node says so and its listener serves nothing.
	apply("{sds: {secretName: backend-cert}}", files.ca)
	waitFor(t, 30*time.Second, "backend Ready False", func() bool {
		st, _, _ := readyCondition(t, s, "backend")
		return st == "False"
	})
	if st, reason, msg := readyCondition(t, s, "backend"); reason != "TLSUnavailable" || !strings.Contains(msg, "sds") {
		t.Errorf("backend Ready %s, reason %q, message %q; want TLSUnavailable naming sds", st, reason, msg)
	}
	if out := s.mustCLI("describe", "vn", "backend", "-n", "demo"); !strings.Contains(out, "TLSUnavailable") {
		t.Errorf("describe vn backend does not show TLSUnavailable:\n%s", out)
	}
	waitFor(t, 30*time.Second, "the frontend to be refused by the sds listener", func() bool {
		code, body = call()
		return code == http.StatusBadGateway || code == http.StatusServiceUnavailable
	})
}
