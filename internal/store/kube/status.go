package kube

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// statusOf returns obj's status in canonical JSON (object keys sorted), "" when it has
// none or it is empty.
func statusOf(obj v1alpha1.Object) (string, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("encode: %w", err)
	}
	var top struct {
		Status json.RawMessage `json:"status"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	if len(top.Status) == 0 {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(top.Status))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("decode status: %w", err)
	}
	if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode status: %w", err)
	}
	return string(b), nil
}
