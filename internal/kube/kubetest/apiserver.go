package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// adminUser is the name the admin token authenticates as; it is in system:masters.
const adminUser = "kubetest-admin"

// serviceAccountIssuer is the issuer of the service account tokens the API server signs.
const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

func (e *Env) startAPIServer(ctx context.Context, bin, etcdURL string, o Options) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	host := "127.0.0.1:" + strconv.Itoa(ports[0])
	token, err := randomToken()
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(e.Dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", token, adminUser, adminUser)), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	saKey, saPub, err := e.writeServiceAccountKey()
	if err != nil {
		return err
	}
	certDir := filepath.Join(e.Dir, "apiserver-certs")
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--cert-dir=" + certDir,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[0]),
		"--service-cluster-ip-range=" + ServiceClusterIPRange,
		"--authorization-mode=RBAC",
		"--token-auth-file=" + tokenFile,
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--allow-privileged=true",
		// No kubelets and no real Service network: the kubernetes Service's endpoints
		// would point at a loopback address, which Endpoints may not hold.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// Streaming lists (WatchList) need etcd's watch progress requests, which the
		// API server enables only from etcd 3.4.31/3.5.13 on. With an older etcd it still
		// offers the stream and then fails it, and clients retry forever instead of
		// falling back to LIST; turned off, they fall back at once.
		"--feature-gates=WatchList=false",
	}
	if !o.Controllers {
		// The ServiceAccount admission plugin refuses Pods until the namespace's default
		// ServiceAccount exists, and only the controller manager creates it.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	p, err := e.run("kube-apiserver", bin, args...)
	if err != nil {
		return err
	}

	// The serving certificate is generated at start; until it exists, probe without
	// verification, then use it as the trust root.
	probe := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // only to learn that the server is up
	}}
	err = waitFor(ctx, p, "/readyz", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := probe.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("/readyz: %s", resp.Status)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return fmt.Errorf("read the API server's generated certificate: %w", err)
	}
	e.Config = &rest.Config{
		Host:            "https://" + host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             200,
		Burst:           400,
	}
	if err := writeKubeconfig(e.Kubeconfig, e.Config); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("client for the API server: %w", err)
	}
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("API server version over verified TLS: %w", err)
	}
	return nil
}

// writeServiceAccountKey writes the key pair that signs and verifies service account
// tokens and returns the paths of the private and public key.
func (e *Env) writeServiceAccountKey() (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate service account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encode service account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("encode service account public key: %w", err)
	}
	keyPath := filepath.Join(e.Dir, "sa.key")
	pubPath := filepath.Join(e.Dir, "sa.pub")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", fmt.Errorf("write service account key: %w", err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("write service account public key: %w", err)
	}
	return keyPath, pubPath, nil
}

// writeKubeconfig writes cfg's server, CA and token as a kubeconfig file.
func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[adminUser] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: adminUser}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
