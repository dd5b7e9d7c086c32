package api

// Health is the 200 of GET /healthz: the process is alive. Status is
// CheckOK.
type Health struct {
	Status string `json:"status"`
}

// Readiness is the answer of GET /readyz: 200 when every dependency check
// passes, 503 otherwise.
type Readiness struct {
	Ready bool `json:"ready"`
	// Checks is CheckOK or CheckDown by dependency name (postgres, redis, nats,
	// node_lease, ...).
	Checks map[string]string `json:"checks"`
}

// Readiness check results.
const (
	CheckOK   = "ok"
	CheckDown = "down"
)
