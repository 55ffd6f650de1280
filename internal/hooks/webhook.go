package hooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Payload is what every webhook receives, with Flagger's field names.
type Payload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Result is the outcome of one webhook call, as status shows it.
type Result struct {
	Name       string
	Type       string
	OK         bool
	StatusCode int
	Message    string
	Attempts   int
}

// DefaultTimeout is a webhook's timeout when it gives none (Flagger's).
const DefaultTimeout = 10 * time.Second

// maxBodyInMessage bounds how much of a failing hook's answer lands in status.
const maxBodyInMessage = 512

// Caller calls webhooks.
type Caller struct {
	// Client is used for hooks with TLS verification; nil means a default client.
	Client *http.Client
	// Now stamps event payloads; nil means time.Now.
	Now func() time.Time
	// RetryDelay is the pause before the first retry, doubled after each (default 1s).
	RetryDelay time.Duration
}

func (c *Caller) client(h v1alpha1.CanaryWebhook) *http.Client {
	if h.DisableTLS {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the user asked for it with disableTLS
	}
	if c.Client != nil {
		return c.Client
	}
	return http.DefaultClient
}

// Call posts the canary's payload to a webhook and reports whether it passed (2xx).
// It retries as many times as the hook's retries field says.
func (c *Caller) Call(ctx context.Context, cd *v1alpha1.Canary, h v1alpha1.CanaryWebhook) Result {
	p := Payload{Name: cd.Name, Namespace: cd.Namespace, Phase: string(cd.Status.Phase), Checksum: Checksum(cd), Metadata: h.Metadata}
	return c.post(ctx, h, p)
}

// CallEvent posts an event to an event webhook: the payload's metadata carries
// eventMessage, eventType and a millisecond timestamp, plus the hook's own metadata.
func (c *Caller) CallEvent(ctx context.Context, cd *v1alpha1.Canary, h v1alpha1.CanaryWebhook, message, eventType string) Result {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	md := map[string]string{
		"eventMessage": message,
		"eventType":    eventType,
		"timestamp":    strconv.FormatInt(now().UnixMilli(), 10),
	}
	for k, v := range h.Metadata {
		if _, ok := md[k]; !ok {
			md[k] = v
		}
	}
	p := Payload{Name: cd.Name, Namespace: cd.Namespace, Phase: string(cd.Status.Phase), Checksum: Checksum(cd), Metadata: md}
	return c.post(ctx, h, p)
}

func (c *Caller) post(ctx context.Context, h v1alpha1.CanaryWebhook, p Payload) Result {
	res := Result{Name: h.Name, Type: string(h.Type)}
	if res.Type == "" {
		res.Type = string(v1alpha1.WebhookRollout)
	}
	timeout := DefaultTimeout
	if h.Timeout != "" {
		d, err := time.ParseDuration(h.Timeout)
		if err != nil {
			res.Message = fmt.Sprintf("timeout %q: %v", h.Timeout, err)
			return res
		}
		timeout = d
	}
	body, err := json.Marshal(p)
	if err != nil {
		res.Message = err.Error()
		return res
	}
	delay := c.RetryDelay
	if delay == 0 {
		delay = time.Second
	}
	for attempt := 0; attempt <= h.Retries; attempt++ {
		if attempt > 0 {
			if !wait(ctx, delay) {
				res.Message = ctx.Err().Error()
				return res
			}
			delay *= 2
		}
		res.Attempts = attempt + 1
		res.StatusCode, res.Message, err = c.once(ctx, h, body, timeout)
		if err == nil && res.StatusCode >= 200 && res.StatusCode < 300 {
			res.OK = true
			return res
		}
		if err != nil {
			res.Message = err.Error()
		}
	}
	return res
}

func (c *Caller) once(ctx context.Context, h v1alpha1.CanaryWebhook, body []byte, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client(h).Do(req)
	if err != nil {
		// The result carries the hook's name; status and events put it in front.
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyInMessage))
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return resp.StatusCode, msg, nil
}

func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Checksum identifies the revision under analysis in payloads: the revision the canary
// last applied, as Flagger sends its spec hash.
func Checksum(cd *v1alpha1.Canary) string {
	return cd.Status.LastAppliedSpec
}
