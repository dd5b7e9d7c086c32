package order_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
)

// newTestStore returns a Store over a migrated schema of the test's own.
func newTestStore(t testing.TB) *order.Store {
	t.Helper()
	return order.NewStore(ordertest.NewPool(t))
}

// activityAt is a valid two-item activity whose window is [start, end).
func activityAt(name string, start, end time.Time) order.Activity {
	return order.Activity{
		Name:         name,
		StartAt:      start,
		EndAt:        end,
		PayTimeout:   90 * time.Second,
		PerUserLimit: 2,
		Items: []order.Item{
			{Name: "Phone", PriceCents: 99900, Stock: 100},
			{Name: "Case", PriceCents: 1500, Stock: 7},
		},
	}
}

func TestStoreActivityRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	in := activityAt("Double 11", now.Add(time.Hour), now.Add(2*time.Hour))

	created, err := s.CreateActivity(ctx, in, now)
	if err != nil {
		t.Fatalf("CreateActivity: %v", err)
	}
	if created.ID == 0 || created.Status != order.ActivityDraft || created.PublishedAt != nil || created.CreatedAt.IsZero() {
		t.Fatalf("created = %+v, want an id, status DRAFT, created_at set, no published_at", created)
	}
	if len(created.Items) != 2 || created.Items[0].ID == 0 || created.Items[0].ID >= created.Items[1].ID {
		t.Fatalf("created items = %+v, want 2 with increasing ids", created.Items)
	}
	for i, it := range created.Items {
		want := in.Items[i]
		want.ID, want.ActivityID = it.ID, created.ID
		if it != want {
			t.Errorf("created item %d = %+v, want %+v", i, it, want)
		}
	}

	got, err := s.Activity(ctx, created.ID)
	if err != nil {
		t.Fatalf("Activity: %v", err)
	}
	if !reflect.DeepEqual(got, created) {
		t.Fatalf("Activity = %+v\nwant        %+v", got, created)
	}
	if got.StartAt.Location() != time.UTC || !got.StartAt.Equal(in.StartAt) || got.PayTimeout != in.PayTimeout {
		t.Fatalf("Activity window/timeout = %v %v, want %v %v in UTC", got.StartAt, got.PayTimeout, in.StartAt, in.PayTimeout)
	}

	if _, err := s.Activity(ctx, created.ID+1000); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("Activity(unknown) = %v, want ErrNotFound", err)
	}
}

func TestStoreCreateActivityInvalidWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	now := time.Now()
	bad := activityAt("Bad", now.Add(2*time.Hour), now.Add(time.Hour))

	if _, err := s.CreateActivity(ctx, bad, now); !errors.Is(err, order.ErrInvalid) {
		t.Fatalf("CreateActivity = %v, want ErrInvalid", err)
	}
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM activities) + (SELECT count(*) FROM items)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows written for an invalid activity, want 0", n)
	}
}

func TestStoreMarkPublished(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	now := time.Now()
	a, err := s.CreateActivity(ctx, activityAt("Once", now, now.Add(time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}

	pub, err := s.MarkPublished(ctx, a.ID)
	if err != nil {
		t.Fatalf("first MarkPublished: %v", err)
	}
	if pub.Status != order.ActivityPublished || pub.PublishedAt == nil || len(pub.Items) != 2 {
		t.Fatalf("published = %+v, want status PUBLISHED, published_at set, 2 items", pub)
	}
	if _, err := s.MarkPublished(ctx, a.ID); !errors.Is(err, order.ErrAlreadyPublished) {
		t.Fatalf("second MarkPublished = %v, want ErrAlreadyPublished", err)
	}
	if _, err := s.MarkPublished(ctx, a.ID+1000); !errors.Is(err, order.ErrNotFound) {
		t.Fatalf("MarkPublished(unknown) = %v, want ErrNotFound", err)
	}
	got, err := s.Activity(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != order.ActivityPublished || !got.PublishedAt.Equal(*pub.PublishedAt) {
		t.Fatalf("after publishing twice: %+v, want the first publication kept", got)
	}
}

func TestStoreMarkPublishedConcurrentOneWinner(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	now := time.Now()
	a, err := s.CreateActivity(ctx, activityAt("Race", now, now.Add(time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}
	const callers = 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := s.MarkPublished(ctx, a.ID)
			errs <- err
		}()
	}
	var won, lost int
	for range callers {
		switch err := <-errs; {
		case err == nil:
			won++
		case errors.Is(err, order.ErrAlreadyPublished):
			lost++
		default:
			t.Errorf("MarkPublished: %v", err)
		}
	}
	if won != 1 || lost != callers-1 {
		t.Fatalf("%d won, %d got ErrAlreadyPublished; want 1 and %d", won, lost, callers-1)
	}
}

func TestStorePublishedItems(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newTestStore(t)
	now := time.Now().UTC().Truncate(time.Microsecond)

	create := func(name string, start, end time.Time, publish bool) order.Activity {
		t.Helper()
		// Created with an earlier "now" so ended windows pass validation.
		a, err := s.CreateActivity(ctx, activityAt(name, start, end), start)
		if err != nil {
			t.Fatal(err)
		}
		if publish {
			if _, err := s.MarkPublished(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		return a
	}
	running := create("running", now.Add(-time.Hour), now.Add(time.Hour), true)
	upcoming := create("upcoming", now.Add(time.Hour), now.Add(2*time.Hour), true)
	create("draft", now.Add(-time.Hour), now.Add(time.Hour), false)
	create("ended", now.Add(-2*time.Hour), now.Add(-time.Minute), true)
	create("ends exactly now", now.Add(-time.Hour), now, true)

	got, err := s.PublishedItems(ctx, now)
	if err != nil {
		t.Fatalf("PublishedItems: %v", err)
	}
	var want []order.CatalogItem
	for _, a := range []order.Activity{running, upcoming} {
		for _, it := range a.Items {
			want = append(want, order.CatalogItem{
				ActivityID: a.ID, ItemID: it.ID, PriceCents: it.PriceCents, Stock: it.Stock,
				StartAt: a.StartAt, EndAt: a.EndAt, PerUserLimit: a.PerUserLimit, PayTimeout: a.PayTimeout,
			})
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PublishedItems =\n%+v\nwant\n%+v", got, want)
	}

	// An earlier cut-off brings back recently ended activities.
	got, err = s.PublishedItems(ctx, now.Add(-3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("PublishedItems(3 min ago) has %d items, want 8 (4 published activities × 2)", len(got))
	}
}
