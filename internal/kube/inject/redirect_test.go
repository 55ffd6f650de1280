package inject

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRedirectEnvRoundTrip(t *testing.T) {
	gid := int64(3000)
	r := Redirect{AppPorts: []int32{80, 9898}, EgressIgnoredPorts: []int32{22, 3306}, EgressIgnoredIPs: []string{"169.254.169.254", "10.0.0.0/8"},
		IgnoredUID: 1337, IgnoredGID: &gid, ProxyIngressPort: 15000, ProxyEgressPort: 15001}
	env := map[string]string{}
	for _, e := range r.Env() {
		env[e.Name] = e.Value
	}
	if env[EnvAppPorts] != "80,9898" || env[EnvEgressIgnoredIP] != "169.254.169.254,10.0.0.0/8" || env[EnvStartEnabled] != "1" {
		t.Fatalf("Env() = %v", env)
	}
	back, err := RedirectFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if back.IPTablesRules() != r.IPTablesRules() {
		t.Fatalf("rules differ after the round trip:\n%s\nwant\n%s", back.IPTablesRules(), r.IPTablesRules())
	}
}

func TestRedirectFromEnvDefaultsAndErrors(t *testing.T) {
	r, err := RedirectFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if r.IgnoredUID != 1337 || r.ProxyIngressPort != 15000 || r.ProxyEgressPort != 15001 || r.AppPorts != nil {
		t.Fatalf("defaults = %+v", r)
	}
	_, err = RedirectFromEnv(func(k string) string {
		if k == EnvEgressIgnoredPorts {
			return "22,x"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), `APPMESH_EGRESS_IGNORED_PORTS="22,x"`) {
		t.Fatalf("error = %v", err)
	}
}

func TestIPTablesRules(t *testing.T) {
	var ports []int32
	for p := int32(8000); p < 8017; p++ {
		ports = append(ports, p)
	}
	r := Redirect{AppPorts: ports, EgressIgnoredPorts: []int32{22}, EgressIgnoredIPs: []string{"169.254.169.254", "fd00::/8"},
		IgnoredUID: 1337, ProxyIngressPort: 15000, ProxyEgressPort: 15001}
	got := r.IPTablesRules()
	want := `*nat
:CANARYMESH_INGRESS - [0:0]
:CANARYMESH_EGRESS - [0:0]
-A PREROUTING -p tcp -j CANARYMESH_INGRESS
-A OUTPUT -p tcp -j CANARYMESH_EGRESS
-A CANARYMESH_INGRESS -p tcp -m multiport --dports 8000,8001,8002,8003,8004,8005,8006,8007,8008,8009,8010,8011,8012,8013,8014 -j REDIRECT --to-ports 15000
-A CANARYMESH_INGRESS -p tcp -m multiport --dports 8015,8016 -j REDIRECT --to-ports 15000
-A CANARYMESH_EGRESS -m owner --uid-owner 1337 -j RETURN
-A CANARYMESH_EGRESS -o lo -j RETURN
-A CANARYMESH_EGRESS -p tcp -m multiport --dports 22 -j RETURN
-A CANARYMESH_EGRESS -d 169.254.169.254 -j RETURN
-A CANARYMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001
COMMIT
`
	if got != want {
		t.Fatalf("rules:\n%s\nwant:\n%s", got, want)
	}
}

// TestApplyIPTablesForReal loads the rules into the kernel, inside a fresh network
// namespace of a fresh user namespace, and reads them back.
func TestApplyIPTablesForReal(t *testing.T) {
	need := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (required under CI)", what)
		}
		t.Skip(what)
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		need("iptables-restore is not installed (Debian package iptables)")
	}
	if os.Getenv("CANARYMESH_IN_NETNS") != "1" {
		if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
			need("cannot create a user and network namespace (unshare -rn): " + err.Error())
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("unshare", "-rn", exe, "-test.run=^TestApplyIPTablesForReal$", "-test.v")
		cmd.Env = append(os.Environ(), "CANARYMESH_IN_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a new network namespace: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestApplyIPTablesForReal") {
			t.Fatalf("the test did not run in the namespace:\n%s", out)
		}
		return
	}
	// Inside an unprivileged user namespace only UID 0 is mapped, and the kernel refuses
	// an owner match on an unmapped UID; a pod's network namespace has no such limit.
	r := Redirect{AppPorts: []int32{9898}, EgressIgnoredPorts: []int32{22}, EgressIgnoredIPs: []string{"169.254.169.254"},
		IgnoredUID: 0, ProxyIngressPort: 15000, ProxyEgressPort: 15001}
	out, err := ApplyIPTables(context.Background(), r.IPTablesRules())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-A PREROUTING -p tcp -j CANARYMESH_INGRESS",
		"-A CANARYMESH_INGRESS -p tcp -m multiport --dports 9898 -j REDIRECT --to-ports 15000",
		"-A CANARYMESH_EGRESS -m owner --uid-owner 0 -j RETURN",
		"-A CANARYMESH_EGRESS -o lo -j RETURN",
		"-A CANARYMESH_EGRESS -p tcp -m multiport --dports 22 -j RETURN",
		"-A CANARYMESH_EGRESS -d 169.254.169.254/32 -j RETURN",
		"-A CANARYMESH_EGRESS -p tcp -j REDIRECT --to-ports 15001",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("iptables-save lacks %q:\n%s", want, out)
		}
	}
}
