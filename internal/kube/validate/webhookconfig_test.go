package validate

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/controller"
)

// TestCompatResourcesAreTheMirroredKinds: every kind --serve-compat-apis mirrors is
// validated, and nothing else.
func TestCompatResourcesAreTheMirroredKinds(t *testing.T) {
	var got []string
	for _, r := range CompatResources {
		k, err := v1alpha1.LookupKind(r.Resource)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.GroupVersion().WithKind(k.Kind).String())
	}
	var want []string
	for _, gvk := range controller.CompatKinds {
		want = append(want, gvk.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CompatResources are\n %v\nthe mirrored kinds\n %v", got, want)
	}
}

// TestDeployedConfigurationMatches: the ValidatingWebhookConfiguration of deploy/kustomize
// is the one WebhookConfiguration builds (tests use the latter), so the two cannot drift:
// a kind added to api/v1alpha1 must be added to the deployed rules.
func TestDeployedConfigurationMatches(t *testing.T) {
	data, err := os.ReadFile("../../../deploy/kustomize/webhook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var deployed *admissionregistrationv1.ValidatingWebhookConfiguration
	for {
		var cfg admissionregistrationv1.ValidatingWebhookConfiguration
		err := dec.Decode(&cfg)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Kind == "ValidatingWebhookConfiguration" {
			deployed = &cfg
		}
	}
	if deployed == nil {
		t.Fatal("deploy/kustomize/webhook.yaml has no ValidatingWebhookConfiguration")
	}
	if deployed.Name != DefaultWebhookConfiguration || len(deployed.Webhooks) != 1 {
		t.Fatalf("deployed configuration %s with %d webhooks, want %s with 1", deployed.Name, len(deployed.Webhooks), DefaultWebhookConfiguration)
	}
	got := deployed.Webhooks[0]
	if s := got.ClientConfig.Service; s == nil || s.Path == nil || *s.Path != WebhookPath {
		t.Errorf("deployed webhook's service %+v does not call %s", s, WebhookPath)
	}
	want := WebhookConfiguration(DefaultWebhookConfiguration, got.ClientConfig, "kube-system", "canarymesh-system").Webhooks[0]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deploy/kustomize/webhook.yaml differs from WebhookConfiguration:\n deployed: %+v\n built:    %+v", got, want)
	}
}
