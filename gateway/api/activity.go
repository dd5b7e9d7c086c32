package api

import "time"

// Activity statuses, the Status of Activity and ActivityStats.
const (
	// ActivityDraft is a created activity that does not sell yet.
	ActivityDraft = "DRAFT"
	// ActivityPublished is an activity whose stock is in Redis and which
	// sells inside its window.
	ActivityPublished = "PUBLISHED"
)

// CreateActivityRequest is the body of POST /admin/v1/activities. Times are
// RFC 3339; the window is [StartAt, EndAt).
type CreateActivityRequest struct {
	Name              string    `json:"name"`
	StartAt           time.Time `json:"start_at"`
	EndAt             time.Time `json:"end_at"`
	PayTimeoutSeconds int64     `json:"pay_timeout_seconds"`
	PerUserLimit      int64     `json:"per_user_limit"`
	Items             []NewItem `json:"items"`
}

// NewItem is one item of a CreateActivityRequest.
type NewItem struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

// Activity is an activity as the admin API returns it: the 201 of
// POST /admin/v1/activities (status DRAFT, with the new item ids) and the 200
// of POST /admin/v1/activities/{id}/publish (status PUBLISHED).
type Activity struct {
	ID                ID        `json:"id"`
	Status            string    `json:"status"`
	Name              string    `json:"name"`
	StartAt           time.Time `json:"start_at"`
	EndAt             time.Time `json:"end_at"`
	PayTimeoutSeconds int64     `json:"pay_timeout_seconds"`
	PerUserLimit      int64     `json:"per_user_limit"`
	Items             []Item    `json:"items"`
}

// Item is one item of an Activity. Stock is the units the activity sells in
// total, not what is left (see ItemInfo.Available).
type Item struct {
	ID         ID     `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

// ActivityInfo is the public view of a published activity, the 200 of
// GET /api/v1/activities/{id} (drafts are 404): the window, the server's
// clock for countdowns and each item's available stock.
type ActivityInfo struct {
	ID                ID         `json:"id"`
	Status            string     `json:"status"`
	Name              string     `json:"name"`
	StartAt           time.Time  `json:"start_at"`
	EndAt             time.Time  `json:"end_at"`
	PayTimeoutSeconds int64      `json:"pay_timeout_seconds"`
	PerUserLimit      int64      `json:"per_user_limit"`
	Items             []ItemInfo `json:"items"`
	// ServerTime is the gateway's clock when it answered.
	ServerTime time.Time `json:"server_time"`
}

// ItemInfo is one item of an ActivityInfo.
type ItemInfo struct {
	ID         ID     `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
	// Available is the units left in Redis now.
	Available int64 `json:"available"`
}

// ActivityStats is the 200 of GET /admin/v1/activities/{id}/stats.
type ActivityStats struct {
	ActivityID ID          `json:"activity_id"`
	Status     string      `json:"status"`
	Items      []ItemStats `json:"items"`
}

// ItemStats is one item's stock accounting in an ActivityStats; all figures
// are units. Figures read while traffic flows are a snapshot of two stores;
// once traffic stops they are exact.
type ItemStats struct {
	ItemID     ID    `json:"item_id"`
	StockTotal int64 `json:"stock_total"`
	// Available is the stock left in Redis; -1 when the item's Redis state
	// is missing.
	Available int64 `json:"available"`
	// Reserved is units of reservations whose order has no row yet.
	Reserved  int64 `json:"reserved"`
	Pending   int64 `json:"pending"`
	Paid      int64 `json:"paid"`
	Cancelled int64 `json:"cancelled"`
	// Returning is cancelled units whose return to Redis has not finished.
	Returning int64 `json:"returning"`
	// Consistent says the conservation equation (invariant I3) holds in
	// this snapshot: stock_total = available + reserved + pending + paid +
	// returning.
	Consistent bool `json:"consistent"`
}
