package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// target is one way of reaching the backend: directly or through a proxy process.
type target struct {
	name  string
	addr  string // where the load goes
	pid   int    // the proxy process measured (0: direct)
	admin string // canarymesh: metrics and pprof
	cmd   *exec.Cmd
}

// stop ends the target's process, if it has one.
func (t *target) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	t.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.cmd.Process.Kill()
		<-done
	}
}

// freePort asks the kernel for a port that is free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// start runs a child pinned to cpu (when pinning), its output going to a log file in
// the run's directory.
func (h *harness) start(name string, cpu int, env []string, argv ...string) (*exec.Cmd, error) {
	if h.pin {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(h.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() { cmd.Wait(); logf.Close() }()
	return cmd, nil
}

// waitReady polls addr until it answers 200 for the bench host.
func waitReady(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		req.Host = benchHost
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

const nginxCommon = `worker_processes 1;
master_process off;
daemon off;
pid %[1]s/%[2]s.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path %[1]s/tmp-%[2]s;
  proxy_temp_path %[1]s/tmp-%[2]s;
  fastcgi_temp_path %[1]s/tmp-%[2]s;
  uwsgi_temp_path %[1]s/tmp-%[2]s;
  scgi_temp_path %[1]s/tmp-%[2]s;
%[3]s
}
`

// startNginx runs nginx in one process (master_process off: the worker is the process
// measured, as for canarymesh and HAProxy) with the given http-level config.
func (h *harness) startNginx(name string, cpu int, httpConf string) (*exec.Cmd, error) {
	conf := filepath.Join(h.dir, name+".conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxCommon, h.dir, name, httpConf)), 0o644); err != nil {
		return nil, err
	}
	return h.start(name, cpu, nil, h.tools.nginx, "-p", h.dir, "-c", conf, "-e", "stderr")
}

// startBackend runs the backend every target reaches: nginx answering "ok" from its
// config when nginx is installed (the fastest server at hand, so that the proxies are
// what is measured), else the harness's own Go server.
func (h *harness) startBackend(ctx context.Context) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{name: "direct", addr: loopback(port)}
	if h.tools.nginx != "" && h.backendKind != "go" {
		h.backendDesc = "nginx, 1 worker, `return 200 \"ok\"`"
		t.cmd, err = h.startNginx("backend", h.loadCPU, fmt.Sprintf(`  server {
    listen %s;
    location / { default_type text/plain; return 200 "ok"; }
  }`, t.addr))
	} else {
		h.backendDesc = "Go net/http answering \"ok\""
		t.cmd, err = h.start("backend", h.loadCPU, nil, h.self, "-role", "backend", "-listen", t.addr)
	}
	if err != nil {
		return nil, err
	}
	return t, h.ready(ctx, t, "backend")
}

// startCanarymesh runs canarymesh's data plane at GOMAXPROCS=1 (nginx's one worker),
// configured from a static snapshot.
func (h *harness) startCanarymesh(ctx context.Context, name, backend string, netHTTP bool) (*target, error) {
	return h.startProxyRole(ctx, name, h.self, backend, netHTTP)
}

// startBuild runs the canarymesh of another build of this harness, to compare builds.
func (h *harness) startBuild(ctx context.Context, name, bin, backend string) (*target, error) {
	return h.startProxyRole(ctx, name, bin, backend, false)
}

func (h *harness) startProxyRole(ctx context.Context, name, bin, backend string, netHTTP bool) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	aport, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{name: name, addr: loopback(port), admin: loopback(aport)}
	args := []string{bin, "-role", "canarymesh", "-listen", t.addr, "-backend", backend, "-admin", t.admin}
	if netHTTP {
		args = append(args, "-nethttp")
	}
	env := []string{"GOMAXPROCS=" + strconv.Itoa(h.procs)}
	if t.cmd, err = h.start(name, h.proxyCPU, env, args...); err != nil {
		return nil, err
	}
	t.pid = t.cmd.Process.Pid
	return t, h.ready(ctx, t, name)
}

// startNginxProxy runs nginx with one worker as a reverse proxy keeping 64 idle
// upstream connections.
func (h *harness) startNginxProxy(ctx context.Context, backend string) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{name: "nginx", addr: loopback(port)}
	t.cmd, err = h.startNginx("nginx-proxy", h.proxyCPU, fmt.Sprintf(`  upstream be {
    server %s;
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen %s;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`, backend, t.addr))
	if err != nil {
		return nil, err
	}
	t.pid = t.cmd.Process.Pid
	return t, h.ready(ctx, t, "nginx-proxy")
}

const haproxyConf = `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind %s
  default_backend be
backend be
  server s1 %s
`

// startHAProxy runs HAProxy in the foreground with one thread, reusing server
// connections across requests.
func (h *harness) startHAProxy(ctx context.Context, backend string) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	t := &target{name: "haproxy", addr: loopback(port)}
	conf := filepath.Join(h.dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(haproxyConf, t.addr, backend)), 0o644); err != nil {
		return nil, err
	}
	if t.cmd, err = h.start("haproxy", h.proxyCPU, nil, h.tools.haproxy, "-f", conf, "-db"); err != nil {
		return nil, err
	}
	t.pid = t.cmd.Process.Pid
	return t, h.ready(ctx, t, "haproxy")
}

// ready waits for a target, quoting its log when it does not come up.
func (h *harness) ready(ctx context.Context, t *target, logName string) error {
	err := waitReady(ctx, t.addr)
	if err != nil {
		out, _ := os.ReadFile(filepath.Join(h.dir, logName+".log"))
		err = fmt.Errorf("%w\n%s", err, out)
	}
	return err
}

// versionOf returns the first line a tool prints about its version.
func versionOf(argv ...string) string {
	out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}
