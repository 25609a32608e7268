package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/store"
)

func open(t *testing.T) *store.Store {
	t.Helper()
	_, js := eventstest.Start(t, "").Connect(t)
	st, err := store.Open(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func app(name string) events.App {
	return events.App{Metadata: events.Metadata{Name: name}, Spec: events.AppSpec{Networking: events.Networking{Domain: name + ".example.com"}}}
}

func TestConcurrentChangesAreNotLost(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if _, created, err := st.PutApp(ctx, app("shop")); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	const n = 20
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = st.PutInstance(ctx, "shop", events.Instance{ID: fmt.Sprintf("i%d", i), IP: "10.0.0.1", Port: 1000 + i})
		})
	}
	// A concurrent spec change must keep the instances, and vice versa.
	wg.Go(func() {
		a := app("shop")
		a.Spec.LBMethod = events.LBLeastConn
		_, _, errs[n] = st.PutApp(ctx, a)
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	e, err := st.Get(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Record.Instances) != n || e.Record.App.Spec.LBMethod != events.LBLeastConn {
		t.Errorf("record after concurrent changes: %d instances, lb %q", len(e.Record.Instances), e.Record.App.Spec.LBMethod)
	}
}

func TestErrors(t *testing.T) {
	st := open(t)
	ctx := context.Background()
	if _, err := st.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get: %v", err)
	}
	if _, err := st.Get(ctx, "Bad.Name"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get invalid name: %v", err)
	}
	if _, _, err := st.PutInstance(ctx, "nope", events.Instance{ID: "a", IP: "10.0.0.1", Port: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("put instance: %v", err)
	}
	if _, _, err := st.PutApp(ctx, app("shop")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RemoveInstance(ctx, "shop", "ghost"); !errors.Is(err, store.ErrInstanceNotFound) {
		t.Errorf("remove absent: %v", err)
	}
	other := app("other")
	other.Spec.Networking.Domain = "shop.example.com"
	other.Spec.Networking.ExternalPort = 80
	if _, _, err := st.PutApp(ctx, other); !errors.Is(err, store.ErrAddressTaken) {
		t.Errorf("address conflict: %v", err)
	}
	if err := st.DeleteApp(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteApp(ctx, "shop"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if all, err := st.List(ctx); err != nil || len(all) != 0 {
		t.Errorf("list after delete: %v %v", all, err)
	}
}
