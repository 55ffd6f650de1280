package snapshot

import (
	"strings"
	"testing"
)

// A problem names where it is: listener, virtual host, route, and the match entry.
func TestConsistentNamesWhere(t *testing.T) {
	bad := "("
	s := &Snapshot{
		Clusters: []Cluster{{Name: "c"}},
		Listeners: []Listener{{Name: "egress", Kind: Egress, VirtualHosts: []VirtualHost{{Name: "shop/web", Routes: []Route{
			{Name: "r", Targets: []WeightedCluster{{Cluster: "c", Weight: 100}},
				Match: Match{Path: &StringMatch{Regex: bad}, Headers: []HeaderMatch{{Name: "x-user", Regex: &bad}}}},
			{Name: "r", Targets: []WeightedCluster{{Cluster: "gone", Weight: 100}}},
		}}}}},
	}
	err := s.Consistent()
	if err == nil {
		t.Fatal("an inconsistent snapshot passed")
	}
	for _, want := range []string{
		`listener "egress" virtual host "shop/web" route "r" path: "(" is not a valid regular expression (RE2)`,
		`listener "egress" virtual host "shop/web" route "r" header "x-user": "(" is not a valid regular expression (RE2)`,
		`listener "egress" virtual host "shop/web": route "r" is defined twice`,
		`listener "egress" virtual host "shop/web" route "r": target cluster "gone" is not in the snapshot`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}
