// Package seed stores the objects of a benchmark's world, as the API would have stored
// them.
package seed

import (
	"context"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// CreateAll stores objs a hundred to a transaction, each defaulted as the API would.
func CreateAll(ctx context.Context, st store.Store, objs []v1alpha1.Object) error {
	for len(objs) > 0 {
		batch := objs[:min(100, len(objs))]
		objs = objs[len(batch):]
		err := st.Txn(ctx, func(tx store.Tx) error {
			for _, o := range batch {
				k, err := v1alpha1.KindOf(o)
				if err != nil {
					return err
				}
				o.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
				if d, ok := o.(v1alpha1.Defaulter); ok {
					d.Default()
				}
				if _, err := tx.Create(o); err != nil {
					return fmt.Errorf("%s/%s: %w", k.Kind, o.GetName(), err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
