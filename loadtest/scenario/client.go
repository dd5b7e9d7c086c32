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
)

// api is the seckill HTTP API as the run's setup and checks use it: the
// admin calls around the load, never the load itself (vegeta sends that).
type api struct {
	base  string
	admin string // admin bearer token
	http  *http.Client
}

// NewAPI is a client of the gateway at base acting as the admin whose token
// is adminToken.
func NewAPI(base, adminToken string) *api {
	return &api{base: strings.TrimRight(base, "/"), admin: adminToken, http: &http.Client{Timeout: 10 * time.Second}}
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
func (c *api) CreateAndPublish(ctx context.Context, s ActivitySpec) (Activity, error) {
	now := time.Now().UTC()
	in := map[string]any{
		"name": s.Name, "start_at": now.Add(-time.Minute), "end_at": now.Add(s.Open),
		"pay_timeout_seconds": int64(s.PayTimeout / time.Second), "per_user_limit": s.Limit,
		"items": []map[string]any{{"name": "loadtest item", "price_cents": s.PriceCents, "stock": s.Stock}},
	}
	var created struct {
		ID    string `json:"id"`
		Items []struct {
			ID         string `json:"id"`
			PriceCents int64  `json:"price_cents"`
		} `json:"items"`
	}
	if err := c.do(ctx, http.MethodPost, "/admin/v1/activities", in, http.StatusCreated, &created); err != nil {
		return Activity{}, fmt.Errorf("create activity: %w", err)
	}
	if len(created.Items) != 1 {
		return Activity{}, fmt.Errorf("create activity: %d items in the answer, want 1", len(created.Items))
	}
	var a Activity
	var err1, err2 error
	a.ID, err1 = strconv.ParseInt(created.ID, 10, 64)
	a.ItemID, err2 = strconv.ParseInt(created.Items[0].ID, 10, 64)
	if err1 != nil || err2 != nil {
		return Activity{}, fmt.Errorf("create activity: ids %q/%q are not integers", created.ID, created.Items[0].ID)
	}
	a.PriceCents = created.Items[0].PriceCents
	if err := c.do(ctx, http.MethodPost, "/admin/v1/activities/"+created.ID+"/publish", nil, http.StatusOK, nil); err != nil {
		return Activity{}, fmt.Errorf("publish activity %d: %w", a.ID, err)
	}
	return a, nil
}

// ItemStats is one item of GET /admin/v1/activities/{id}/stats.
type ItemStats struct {
	ItemID     string `json:"item_id"`
	StockTotal int64  `json:"stock_total"`
	Available  int64  `json:"available"`
	Reserved   int64  `json:"reserved"`
	Pending    int64  `json:"pending"`
	Paid       int64  `json:"paid"`
	Cancelled  int64  `json:"cancelled"`
	Returning  int64  `json:"returning"`
	Consistent bool   `json:"consistent"`
}

func (s ItemStats) String() string {
	return fmt.Sprintf("total %d available %d reserved %d pending %d paid %d cancelled %d returning %d consistent %t",
		s.StockTotal, s.Available, s.Reserved, s.Pending, s.Paid, s.Cancelled, s.Returning, s.Consistent)
}

// stats returns the stats of the activity's only item.
func (c *api) stats(ctx context.Context, a Activity) (ItemStats, error) {
	var out struct {
		Items []ItemStats `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/admin/v1/activities/"+strconv.FormatInt(a.ID, 10)+"/stats", nil, http.StatusOK, &out); err != nil {
		return ItemStats{}, fmt.Errorf("stats: %w", err)
	}
	for _, it := range out.Items {
		if it.ItemID == strconv.FormatInt(a.ItemID, 10) {
			return it, nil
		}
	}
	return ItemStats{}, fmt.Errorf("stats: item %d missing", a.ItemID)
}

// do sends an admin request and decodes the answer when it has the wanted status.
func (c *api) do(ctx context.Context, method, path string, in any, want int, out any) error {
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
