package snapshot

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// The encoding with a version put in is exactly what json.Marshal writes, whatever the
// snapshot holds; equal content gives equal encodings whatever the versions.
func TestEncodingIsTheJSONWithoutTheVersion(t *testing.T) {
	full := &Snapshot{Version: 42, Node: "VirtualNode/shop/web", Mesh: "m",
		Listeners: []Listener{{Name: "egress", Kind: Egress, Protocol: "http", Port: 15001, VirtualHosts: []VirtualHost{{
			Name: "shop/api", Domains: []string{"api.shop"},
			Routes: []Route{{Name: "shop/api/split", Protocol: "http", Match: Match{Prefix: "/"},
				Targets: []WeightedCluster{{Cluster: "shop/api-primary", Weight: 90}, {Cluster: "shop/api-canary", Weight: 10}},
				Retry:   &RetryPolicy{MaxRetries: 2, PerTryTimeout: time.Second}}},
		}}}},
		Clusters: []Cluster{{Name: "shop/api-primary", Protocol: "http", Port: 8080,
			Endpoints: []Endpoint{{Address: "10.0.0.1:8080", Ready: true, Labels: map[string]string{"app": "api"}}},
			TLS:       &ClientTLS{Validation: TLSValidation{TrustChain: "/ca.pem", SubjectAlternativeNames: []string{"api.shop"}}, SNI: "api.shop"}}},
	}
	full.Listeners = append(full.Listeners, Listener{Name: "ingress-8080", Kind: Ingress, Protocol: "http", Port: 8080,
		LocalCluster: "local:shop/web", TLS: &ListenerTLS{Mode: TLSStrict, CertificateChain: "/web.pem", PrivateKey: "/web-key.pem"}})
	for name, s := range map[string]*Snapshot{"empty": {}, "version only": {Version: 7}, "full": full} {
		t.Run(name, func(t *testing.T) {
			enc, err := Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []uint64{0, 1, s.Version, 1<<64 - 1} {
				c := *s
				c.Version = v
				want, err := json.Marshal(&c)
				if err != nil {
					t.Fatal(err)
				}
				if got := enc.AppendJSON([]byte("x"), v); !bytes.Equal(got, append([]byte("x"), want...)) {
					t.Errorf("version %d:\n got %s\nwant x%s", v, got, want)
				}
				again, err := Encode(&c)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, enc) {
					t.Errorf("version %d changes the encoding:\n%s\n%s", v, again, enc)
				}
			}
		})
	}
	other := *full
	other.Clusters = []Cluster{{Name: "shop/api-primary", Protocol: "http", Port: 8081}}
	a, _ := Encode(full)
	b, _ := Encode(&other)
	if bytes.Equal(a, b) {
		t.Error("snapshots of different content encode alike")
	}
	plain := *full
	plain.Clusters = []Cluster{full.Clusters[0]}
	plain.Clusters[0].TLS = nil
	if c, _ := Encode(&plain); bytes.Equal(a, c) {
		t.Error("a cluster's TLS does not show in the encoding")
	}
}
