package order

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ActivityStatus is where an activity stands. The only transition is
// DRAFT → PUBLISHED, made once by Store.MarkPublished.
type ActivityStatus string

const (
	// ActivityDraft is a created activity whose stock is not in Redis yet;
	// nobody can buy from it.
	ActivityDraft ActivityStatus = "DRAFT"
	// ActivityPublished is an activity whose stock was handed to Redis. Its
	// items are listed by Store.PublishedItems until the window ends.
	ActivityPublished ActivityStatus = "PUBLISHED"
)

// Limits on a new activity, enforced by Activity.Validate. They keep one
// activity's Redis footprint, Lua arguments and stats bounded.
const (
	maxNameLen      = 200
	maxWindow       = 31 * 24 * time.Hour
	minPayTimeout   = time.Second
	maxPayTimeout   = 24 * time.Hour
	maxPerUserLimit = 1000
	maxItems        = 100
	maxPriceCents   = 10_000_000_000
	maxStockPerItem = 10_000_000
)

// Item is one product of an activity. Stock is the total number of units the
// activity sells; it never changes after creation (what is left lives in Redis).
type Item struct {
	ID         int64
	ActivityID int64
	Name       string
	PriceCents int64
	Stock      int64
}

// Activity is a flash sale: a buy window, a payment timeout, a per-user limit
// and the items on sale. Items are ordered by id.
type Activity struct {
	ID   int64
	Name string
	// StartAt and EndAt bound the window in which buys are accepted: [StartAt, EndAt).
	StartAt, EndAt time.Time
	// PayTimeout is how long an order stays PENDING before it is cancelled.
	PayTimeout time.Duration
	// PerUserLimit is how many live units of each item one user may hold.
	PerUserLimit int64
	Status       ActivityStatus
	Items        []Item
	CreatedAt    time.Time
	// PublishedAt is nil while the activity is a draft.
	PublishedAt *time.Time
}

// Validate checks a new activity against the rules below and returns nil or
// ErrInvalid wrapped with a message naming the first offending field (fields
// are named as in the HTTP API, e.g. "items[2].stock"):
//
//   - name is 1..200 characters and not blank;
//   - start_at is before end_at, end_at is after now, and the window is at
//     most 31 days;
//   - pay_timeout_seconds is a whole number of seconds in 1s..24h;
//   - per_user_limit is 1..1000;
//   - there are 1..100 items, each with a name of 1..200 characters,
//     price_cents in 1..10^10 and stock in 1..10,000,000.
//
// Ids, status and timestamps are assigned by the store and not checked.
func (a Activity) Validate(now time.Time) error {
	if err := validName("name", a.Name); err != nil {
		return err
	}
	switch {
	case !a.StartAt.Before(a.EndAt):
		return invalid("end_at must be after start_at")
	case !a.EndAt.After(now):
		return invalid("end_at must be in the future")
	case a.EndAt.Sub(a.StartAt) > maxWindow:
		return invalid("end_at must be at most 31 days after start_at")
	case a.PayTimeout < minPayTimeout || a.PayTimeout > maxPayTimeout:
		return invalid("pay_timeout_seconds must be between 1 and 86400")
	case a.PayTimeout%time.Second != 0:
		return invalid("pay_timeout_seconds must be a whole number of seconds")
	case a.PerUserLimit < 1 || a.PerUserLimit > maxPerUserLimit:
		return invalid("per_user_limit must be between 1 and %d", maxPerUserLimit)
	case len(a.Items) < 1 || len(a.Items) > maxItems:
		return invalid("items must hold between 1 and %d items", maxItems)
	}
	for i, it := range a.Items {
		field := fmt.Sprintf("items[%d]", i)
		if err := validName(field+".name", it.Name); err != nil {
			return err
		}
		if it.PriceCents < 1 || it.PriceCents > maxPriceCents {
			return invalid("%s.price_cents must be between 1 and %d", field, int64(maxPriceCents))
		}
		if it.Stock < 1 || it.Stock > maxStockPerItem {
			return invalid("%s.stock must be between 1 and %d", field, maxStockPerItem)
		}
	}
	return nil
}

func validName(field, name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid("%s must not be blank", field)
	}
	if utf8.RuneCountInString(name) > maxNameLen {
		return invalid("%s must be at most %d characters", field, maxNameLen)
	}
	// PostgreSQL text cannot hold NUL, and no name needs control characters.
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return invalid("%s must not contain control characters", field)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
