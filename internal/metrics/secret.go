package metrics

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// SecretSource gives a provider's credentials: the data of the Secret a MetricTemplate's
// spec.provider.secretRef names. Kubernetes mode reads Secrets from the API server;
// standalone mode reads files (FileSecrets).
type SecretSource interface {
	// Secret returns the Secret's data by key; an error wrapping ErrSecretNotFound when
	// there is no such Secret.
	Secret(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// ErrSecretNotFound: the named Secret does not exist.
var ErrSecretNotFound = errors.New("secret not found")

// Keys a provider reads from its Secret, as Flagger's Prometheus provider does.
const (
	SecretUsername = "username" // basic auth, with SecretPassword
	SecretPassword = "password"
	SecretToken    = "token" // bearer token
)

// FileSecrets reads standalone Secrets from Dir/NAMESPACE/NAME.yaml. A file holds either
// a plain map of keys to string values, or a Kubernetes Secret manifest whose data
// (base64) and stringData are merged.
type FileSecrets struct {
	Dir string
}

var _ SecretSource = FileSecrets{}

// Secret reads one Secret file.
func (f FileSecrets) Secret(_ context.Context, namespace, name string) (map[string][]byte, error) {
	if f.Dir == "" {
		return nil, fmt.Errorf("secret %s/%s: no secrets directory: %w", namespace, name, ErrSecretNotFound)
	}
	if filepath.Base(namespace) != namespace || filepath.Base(name) != name || namespace == ".." || name == ".." {
		return nil, fmt.Errorf("secret %s/%s: not a valid name", namespace, name)
	}
	p := filepath.Join(f.Dir, namespace, name+".yaml")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secret %s/%s: %s does not exist: %w", namespace, name, p, ErrSecretNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return parseSecretFile(p, b)
}

func parseSecretFile(path string, b []byte) (map[string][]byte, error) {
	var manifest struct {
		Kind       string            `json:"kind"`
		Data       map[string][]byte `json:"data"`
		StringData map[string]string `json:"stringData"`
	}
	var probe map[string]any
	if err := yaml.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string][]byte{}
	if probe["kind"] == "Secret" {
		if err := yaml.Unmarshal(b, &manifest); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for k, v := range manifest.Data {
			out[k] = v
		}
		for k, v := range manifest.StringData {
			out[k] = []byte(v)
		}
		return out, nil
	}
	for k, v := range probe {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: key %q: want a string value, got %T", path, k, v)
		}
		out[k] = []byte(s)
	}
	return out, nil
}
