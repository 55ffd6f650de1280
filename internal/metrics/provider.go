package metrics

import (
	"context"
	"errors"
)

// Provider answers a metric query with one number.
type Provider interface {
	// Query returns the value the query measures; ErrNoData (tested with errors.Is)
	// when there was nothing to measure, which a canary's noData policy judges.
	Query(ctx context.Context, query string) (float64, error)
}

// ErrNoData: the query found nothing to measure (no requests in the window, an empty
// result). It is not a failure of the provider.
var ErrNoData = errors.New("no data")
