package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// KubeVersion is the Kubernetes release whose programs the environment runs.
const KubeVersion = "v1.36.3"

// ServiceClusterIPRange is the range the API server allocates Service cluster IPs from.
const ServiceClusterIPRange = "10.96.0.0/16"

// PodCIDR is the range kwok allocates Pod IPs from.
const PodCIDR = "10.244.0.1/16"

// NodeName is the name of the fake Node that kwok keeps Ready when Options.Kwok is set.
const NodeName = "kwok-node-0"

// startTimeout bounds how long each process may take to become ready. Generous: the
// machine running the tests may be busy with other suites.
const startTimeout = 2 * time.Minute

// Options says which parts of the control plane Start runs besides etcd and the API server.
type Options struct {
	// CRDs installs deploy/crds (canarymesh.dev) and waits until they are established.
	CRDs bool
	// CompatCRDs also installs deploy/compat-crds (appmesh.k8s.aws/v1beta2, flagger.app/v1beta1).
	CompatCRDs bool
	// Controllers starts kube-controller-manager: Deployments get ReplicaSets and Pods,
	// Services get EndpointSlices, namespaces get their default ServiceAccount. The API
	// server's ServiceAccount admission plugin is then on, as in a cluster: a Pod created
	// directly in a new namespace is refused until that ServiceAccount exists (Pods of
	// Deployments are retried). Without Controllers the plugin is off.
	Controllers bool
	// Kwok starts kwok with one fake Node (NodeName) and the kube-scheduler, so Pods are
	// bound to the Node and become Running and Ready without a kubelet.
	Kwok bool
}

// Env is a running control plane. Start returns it; it is stopped by the test's cleanup.
type Env struct {
	// Config is a cluster-admin client configuration (member of system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same credentials, for child
	// processes.
	Kubeconfig string
	// Dir is the environment's temporary directory: data, certificates and the log of each
	// process (NAME.log).
	Dir string

	procs []*process
}

// BinDir is where scripts/kube-binaries puts kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok: $CANARYMESH_KUBE_BIN, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/canarymesh/kube/v1.36.3/bin.
func BinDir() string {
	if d := os.Getenv("CANARYMESH_KUBE_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "canarymesh", "kube", KubeVersion, "bin")
}

// Start runs etcd and the API server, plus what o asks for, and returns when all of it is
// ready. Everything is stopped in t.Cleanup; when the test failed, the tail of each
// process's log is printed first. Start skips the test (fails it when CI=true) when etcd
// or a needed Kubernetes program is missing.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	etcdBin, bins := findPrograms(t, o)

	dir := t.TempDir()
	e := &Env{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig")}
	t.Cleanup(func() { e.stop(t) })

	ctx, cancel := context.WithTimeout(context.Background(), 4*startTimeout)
	defer cancel()
	if err := e.start(ctx, etcdBin, bins, o); err != nil {
		t.Fatalf("kubetest: %v", err) // the cleanup prints the processes' logs
	}
	return e
}

// findPrograms returns the path of etcd and of each Kubernetes program o needs, skipping
// (or failing under CI) the test when one is missing.
func findPrograms(t testing.TB, o Options) (string, map[string]string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := "kubetest: " + what
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		missing("etcd not found in PATH (Debian package etcd-server)")
	}
	names := []string{"kube-apiserver"}
	if o.Controllers {
		names = append(names, "kube-controller-manager")
	}
	if o.Kwok {
		names = append(names, "kube-scheduler", "kwok")
	}
	bins := map[string]string{}
	for _, n := range names {
		p := filepath.Join(BinDir(), n)
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			missing(fmt.Sprintf("%s not found in %s (run scripts/kube-binaries)", n, BinDir()))
		}
		bins[n] = p
	}
	return etcdBin, bins
}

func (e *Env) start(ctx context.Context, etcdBin string, bins map[string]string, o Options) error {
	etcdURL, err := e.startEtcd(ctx, etcdBin)
	if err != nil {
		return err
	}
	// The port was free when picked, but another program on this machine may take it
	// before the API server binds it: then it exits at once, and a new port is tried.
	for attempt := 1; ; attempt++ {
		err := e.startAPIServer(ctx, bins["kube-apiserver"], etcdURL, o)
		if err == nil {
			break
		}
		if attempt == 3 || !e.lastLostItsPort() {
			return err
		}
	}
	if o.CRDs || o.CompatCRDs {
		if err := e.installCRDs(ctx, o); err != nil {
			return err
		}
	}
	if o.Controllers {
		if err := e.startControllerManager(ctx, bins["kube-controller-manager"]); err != nil {
			return err
		}
	}
	if o.Kwok {
		if err := e.startKwok(ctx, bins["kube-scheduler"], bins["kwok"]); err != nil {
			return err
		}
	}
	return nil
}

// lastLostItsPort reports whether the last program started has exited because its
// port was taken.
func (e *Env) lastLostItsPort() bool {
	if len(e.procs) == 0 {
		return false
	}
	p := e.procs[len(e.procs)-1]
	select {
	case <-p.done:
	default:
		return false
	}
	b, err := os.ReadFile(p.log)
	return err == nil && bytes.Contains(b, []byte("address already in use"))
}

// process is one started program and its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid once done is closed
}

// run starts a program with its output going to Dir/NAME.log.
func (e *Env) run(name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(e.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Dir = e.Dir
	cmd.Env = childEnv()
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return p, nil
}

// path is the name of a file in the environment's directory.
func (e *Env) path(elem ...string) string {
	return filepath.Join(append([]string{e.Dir}, elem...)...)
}

// childEnv is the test's environment without proxy settings: every address the
// processes talk to is on 127.0.0.1, and a proxy would intercept webhook calls.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitFor polls ready until it reports true, the process exits or ctx ends.
func waitFor(ctx context.Context, p *process, what string, ready func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		ok, err := ready(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before %s: %v (log %s)", p.name, what, p.err, p.log)
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %s not reached in %s: %w (log %s)", p.name, what, startTimeout, last, p.log)
			}
			return fmt.Errorf("%s: %s not reached in %s (log %s)", p.name, what, startTimeout, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the processes, last started first: SIGTERM, then SIGKILL after a grace period.
func (e *Env) stop(t testing.TB) {
	if t.Failed() {
		e.printLogs(t)
	}
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(terminateSignal)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// logTailLines is how many lines of each process's log a failed test prints.
const logTailLines = 80

func (e *Env) printLogs(t testing.TB) {
	t.Helper()
	for _, p := range e.procs {
		b, err := os.ReadFile(p.log)
		if err != nil {
			t.Logf("kubetest: read log of %s: %v", p.name, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
		t.Logf("kubetest: last %d lines of %s (%s):\n%s", len(lines), p.name, p.log, strings.Join(lines, "\n"))
	}
}

// freePorts returns n distinct ports of 127.0.0.1 that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (e *Env) startEtcd(ctx context.Context, bin string) (string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	p, err := e.run("etcd", bin,
		"--name=kubetest",
		"--data-dir="+filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=kubetest="+peer,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-outputs=stderr",
	)
	if err != nil {
		return "", err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	err = waitFor(ctx, p, "health", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, client+"/health", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(b.String(), `"true"`), nil
	})
	return client, err
}

// randomToken returns a random bearer token.
func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
