package main

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/canarymesh/canarymesh/bench/internal/seed"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

// BenchmarkSync measures the control plane's CPU for one weight change without proxies
// and without the push: MeshSync.Sync over this benchmark's mesh after the router of
// every client's first backend changed, which lists the store, compiles every node and
// hands the changed snapshots, encoded, to a push-stream server with no connections.
// "list" is the store's List alone, which MeshSync.Run no longer does per change.
//
//	go test -run x -bench Sync -benchmem ./bench/fanout
func BenchmarkSync(b *testing.B) {
	for _, nodes := range []int{1000, 10} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			ctx := context.Background()
			st, err := bolt.Open(ctx, b.TempDir(), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if err := seed.CreateAll(ctx, st, world(20, 10, nodes)); err != nil {
				b.Fatal(err)
			}
			log := slog.New(slog.DiscardHandler)
			ms := &controlplane.MeshSync{Store: st, Sink: stream.NewServer(nil, log), Log: log,
				Options: mesh.Options{Sidecar: true}}
			if _, err := ms.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			b.Run("sync", func(b *testing.B) {
				b.ReportAllocs()
				for i := range b.N {
					b.StopTimer()
					if _, err := setWeight(ctx, st, int64(11+i%40), func() {}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, err := ms.Sync(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("list", func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if _, _, err := st.List(ctx, store.Filter{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
