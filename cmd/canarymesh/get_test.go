package main

import (
	"strings"
	"testing"
)

func TestParseGetArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // kind/name pairs, comma-separated
		err  string
	}{
		{args: []string{"vs"}, want: "VirtualService/"},
		{args: []string{"vr", "hello-router"}, want: "VirtualRouter/hello-router"},
		{args: []string{"vs,vr"}, want: "VirtualService/,VirtualRouter/"},
		{args: []string{"vs,virtualservices"}, want: "VirtualService/"},
		{args: []string{"all"}, want: "Mesh/,VirtualService/,VirtualRouter/,VirtualNode/,VirtualGateway/,GatewayRoute/,Canary/,Workload/"},
		{args: []string{"vs/a", "vr/b"}, want: "VirtualService/a,VirtualRouter/b"},
		{args: []string{"vs,vr", "x"}, err: "one kind"},
		{args: []string{"vs/a", "vr"}, err: "every argument must be KIND/NAME"},
		{args: []string{"vs", "a", "b"}, err: "give KIND"},
		{args: []string{"bogus"}, err: "bogus"},
	} {
		reqs, err := parseGetArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		var got []string
		for _, r := range reqs {
			got = append(got, r.kind.Kind+"/"+r.name)
		}
		if g := strings.Join(got, ","); g != tc.want {
			t.Errorf("%v: %s, want %s", tc.args, g, tc.want)
		}
	}
}
