package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/seckill/seckill/gateway/api"
)

// AdminClient is the seckill HTTP API as the run's setup and checks use it:
// the admin calls around the load, never the load itself (vegeta sends that).
type AdminClient struct {
	base  string
	admin string // admin bearer token
	http  *http.Client
}

// NewAPI is a client of the gateway at base acting as the admin whose token
// is adminToken.
func NewAPI(base, adminToken string) *AdminClient {
	return &AdminClient{base: strings.TrimRight(base, "/"), admin: adminToken, http: &http.Client{Timeout: 10 * time.Second}}
}

// ActivitySpec is the activity a scenario sells: one item.
type ActivitySpec struct {
	Name       string
	PayTimeout time.Duration
	Limit      int64
	Stock      int64
	PriceCents int64
	// Open is how long the sale window stays open from now; it starts a
	// minute ago so the first request is inside it whatever the clocks say.
	Open time.Duration
}

// Activity is a created activity's ids.
type Activity struct {
	ID, ItemID, PriceCents int64
}

// CreateAndPublish creates the activity and publishes it (stock into Redis).
func (c *AdminClient) CreateAndPublish(ctx context.Context, s ActivitySpec) (Activity, error) {
	now := time.Now().UTC()
	in := api.CreateActivityRequest{
		Name: s.Name, StartAt: now.Add(-time.Minute), EndAt: now.Add(s.Open),
		PayTimeoutSeconds: int64(s.PayTimeout / time.Second), PerUserLimit: s.Limit,
		Items: []api.NewItem{{Name: "loadtest item", PriceCents: s.PriceCents, Stock: s.Stock}},
	}
	var created api.Activity
	if err := c.do(ctx, http.MethodPost, "/admin/v1/activities", in, http.StatusCreated, &created); err != nil {
		return Activity{}, fmt.Errorf("create activity: %w", err)
	}
	if len(created.Items) != 1 {
		return Activity{}, fmt.Errorf("create activity: %d items in the answer, want 1", len(created.Items))
	}
	a := Activity{ID: int64(created.ID), ItemID: int64(created.Items[0].ID)}
	a.PriceCents = created.Items[0].PriceCents
	if err := c.do(ctx, http.MethodPost, "/admin/v1/activities/"+created.ID.String()+"/publish", nil, http.StatusOK, nil); err != nil {
		return Activity{}, fmt.Errorf("publish activity %d: %w", a.ID, err)
	}
	return a, nil
}

// ItemStats is one item of GET /admin/v1/activities/{id}/stats.
type ItemStats = api.ItemStats

// FormatStats is an item's stats on one line, for reports.
func FormatStats(s ItemStats) string {
	return fmt.Sprintf("total %d available %d reserved %d pending %d paid %d cancelled %d returning %d consistent %t",
		s.StockTotal, s.Available, s.Reserved, s.Pending, s.Paid, s.Cancelled, s.Returning, s.Consistent)
}

// stats returns the stats of the activity's only item.
func (c *AdminClient) stats(ctx context.Context, a Activity) (ItemStats, error) {
	var out api.ActivityStats
	if err := c.do(ctx, http.MethodGet, "/admin/v1/activities/"+strconv.FormatInt(a.ID, 10)+"/stats", nil, http.StatusOK, &out); err != nil {
		return ItemStats{}, fmt.Errorf("stats: %w", err)
	}
	for _, it := range out.Items {
		if int64(it.ItemID) == a.ItemID {
			return it, nil
		}
	}
	return ItemStats{}, fmt.Errorf("stats: item %d missing", a.ItemID)
}

// do sends an admin request and decodes the answer when it has the wanted status.
func (c *AdminClient) do(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.admin)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}
