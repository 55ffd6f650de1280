package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validAlertProvider() *AlertProvider {
	return &AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "on-call", Namespace: "ops"},
		Spec: AlertProviderSpec{
			Type:     AlertProviderSlack,
			Channel:  "releases",
			Username: "canarymesh",
			Address:  "https://hooks.slack.com/services/T000/B000/XXXX",
		},
	}
}

func TestAlertProviderValidate(t *testing.T) {
	type a = *AlertProvider
	runValidationRules(t, validAlertProvider, []validationRule[a]{
		{"name required", func(a a) { a.Name = "" }, "metadata.name", "is required"},
		{"type required", func(a a) { a.Spec.Type = "" }, "spec.type", "is required"},
		{"type unknown", func(a a) { a.Spec.Type = "pagerduty" }, "spec.type", `"pagerduty" is not one of slack, msteams, discord, rocket, gchat, generic`},
		{"neither address nor secretRef", func(a a) { a.Spec.Address = "" }, "spec", "sets neither address nor secretRef"},
		{"both address and secretRef", func(a a) { a.Spec.SecretRef = &SecretReference{Name: "slack-url"} }, "spec", "sets both address and secretRef"},
		{"address not a URL", func(a a) { a.Spec.Address = "hooks.slack.com/services/x" }, "spec.address", "is not an absolute http or https URL"},
		{"secretRef name required", func(a a) { a.Spec.Address, a.Spec.SecretRef = "", &SecretReference{} }, "spec.secretRef.name", "is required"},
		{"proxy not a URL", func(a a) { a.Spec.Proxy = "socks5://proxy:1080" }, "spec.proxy", "is not an absolute http or https URL"},
	})
}

func TestAlertProviderAccepts(t *testing.T) {
	for _, typ := range AlertProviderTypes {
		a := validAlertProvider()
		a.Spec.Type = typ
		a.Spec.Address, a.Spec.SecretRef = "", &SecretReference{Name: "webhook-url"}
		a.Spec.Proxy = "http://proxy.internal:3128"
		a.Default()
		if errs := a.Validate(); len(errs) > 0 {
			t.Errorf("type %s: want valid, got %v", typ, errs)
		}
	}
}

const flaggerAlertProvider = `apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata:
  name: on-call
  namespace: flagger
spec:
  type: msteams
  channel: on-call-alerts
  username: flagger
  proxy: http://my-http-proxy.com
  secretRef:
    name: on-call-url
`

func TestAlertProviderFlaggerManifest(t *testing.T) {
	var a AlertProvider
	strictDecodeYAML(t, flaggerAlertProvider, &a)
	a.Default()
	if errs := a.Validate(); len(errs) > 0 {
		t.Fatalf("invalid: %v", errs)
	}
	if a.Spec.Type != AlertProviderMSTeams || a.Spec.SecretRef.Name != "on-call-url" || a.Spec.Channel != "on-call-alerts" {
		t.Errorf("decoded wrong: %+v", a.Spec)
	}
	if k, err := LookupKind("ap"); err != nil || k.Kind != "AlertProvider" || !k.Namespaced {
		t.Errorf("LookupKind(ap) = %+v, %v", k, err)
	}
}
