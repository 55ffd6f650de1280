package controller_test

import (
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canarymesh/canarymesh/internal/kube/controller"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

// Replicas starting together agree on one stream token, kept in a Secret.
func TestStreamTokenSecretIsSharedByReplicas(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	cs := kubernetes.NewForConfigOrDie(env.Config)
	tokens := make([]string, 4)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			tok, err := controller.EnsureStreamToken(t.Context(), cs, "default", controller.DefaultStreamTokenSecret)
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		})
	}
	wg.Wait()
	sec, err := cs.CoreV1().Secrets("default").Get(t.Context(), controller.DefaultStreamTokenSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := string(sec.Data[controller.StreamTokenKey])
	if len(want) != 64 {
		t.Fatalf("token %q is not 32 random bytes in hex", want)
	}
	for i, tok := range tokens {
		if tok != want {
			t.Errorf("replica %d got %q, the Secret holds %q", i, tok, want)
		}
	}
	if _, err := controller.EnsureStreamToken(t.Context(), cs, "", "x"); err == nil {
		t.Error("no namespace: no error")
	}
}

// Without the CRDs the controller stops at once, saying what is missing.
func TestMissingCRDsAreOneClearError(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	err := controller.Run(t.Context(), controller.Options{Config: env.Config, StreamToken: token,
		StreamListen: "127.0.0.1:0", MetricsBindAddress: "0", HealthProbeBindAddress: "0"})
	if err == nil || !strings.Contains(err.Error(), "are the CRDs installed?") {
		t.Errorf("Run without CRDs: %v", err)
	}
	env = kubetest.Start(t, kubetest.Options{CRDs: true})
	err = controller.Run(t.Context(), controller.Options{Config: env.Config, StreamToken: token, ServeCompatAPIs: true,
		StreamListen: "127.0.0.1:0", MetricsBindAddress: "0", HealthProbeBindAddress: "0"})
	if err == nil || !strings.Contains(err.Error(), "install deploy/compat-crds") {
		t.Errorf("Run --serve-compat-apis without the compat CRDs: %v", err)
	}
}
