package stock

// ItemRef names one item of one activity. It is the one item identity in
// stock and order: map keys, Live's argument, recovery's bookkeeping.
type ItemRef struct{ ActivityID, ItemID int64 }
