package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// A command given by hand (canarymesh promote|abort|retry|pause|resume) travels as an
// annotation on the Canary. The controller passes it to one decision and removes it in
// the same compare-and-swap write that stores that decision's status, so it is carried
// out exactly once. The nonce makes every request a distinct write and names it in the
// controller's log.
const (
	AnnotationCommand      = "canarymesh.dev/command"
	AnnotationCommandNonce = "canarymesh.dev/command-nonce"
)

// ManualCommands lists the commands, in the order the CLI shows them.
var ManualCommands = []ManualCommand{ManualPromote, ManualAbort, ManualRetry, ManualPause, ManualResume}

// ObjectClient reads and writes objects through the API (controlplane.Client).
type ObjectClient interface {
	Get(ctx context.Context, k *v1alpha1.KindInfo, namespace, name string) (v1alpha1.Object, error)
	Update(ctx context.Context, obj v1alpha1.Object, status bool) (v1alpha1.Object, error)
}

// maxCommandAttempts bounds the retries of a command request that lost a race.
const maxCommandAttempts = 10

// RequestCommand asks the controller to carry out cmd on a Canary: it sets the command
// annotation and a fresh nonce with a compare-and-swap update, reading the Canary again
// after a conflict. It returns the nonce.
func RequestCommand(ctx context.Context, c ObjectClient, namespace, name string, cmd ManualCommand) (string, error) {
	k, err := v1alpha1.LookupKind("Canary")
	if err != nil {
		return "", err
	}
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	nonce := hex.EncodeToString(buf)
	for range maxCommandAttempts {
		obj, err := c.Get(ctx, k, namespace, name)
		if err != nil {
			return "", err
		}
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationCommand] = string(cmd)
		ann[AnnotationCommandNonce] = nonce
		obj.SetAnnotations(ann)
		_, err = c.Update(ctx, obj, false)
		if !errors.Is(err, store.ErrConflict) {
			return nonce, err
		}
	}
	return "", fmt.Errorf("canary %s/%s: %w (gave up after %d attempts)", namespace, name, store.ErrConflict, maxCommandAttempts)
}
