package domain

import "time"

// Import sources.
const (
	ImportCustomerIO = "customerio" // Customer.io's App API, GET /v1/messages
	ImportFile       = "file"       // files of reporting-webhook bodies
)

// Import states. An import whose process was killed stays "running" until it
// is started again; UpdatedAt tells how long it has been quiet.
const (
	ImportRunning     = "running"
	ImportInterrupted = "interrupted"
	ImportFailed      = "failed"
	ImportDone        = "done"
)

// Import is one history import of an integration: what it reads, its state and counts.
type Import struct {
	ID            int64      `json:"id"`
	IntegrationID int64      `json:"integration_id"`
	Source        string     `json:"source"`
	Region        string     `json:"region,omitempty"`
	RangeStart    *time.Time `json:"range_start"`
	RangeEnd      *time.Time `json:"range_end"`
	ExplicitRange bool       `json:"explicit_range"`
	State         string     `json:"state"`
	ImportCounts
	LastError  *string      `json:"last_error"`
	StartedAt  time.Time    `json:"started_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
	FinishedAt *time.Time   `json:"finished_at"`
	Units      []ImportUnit `json:"units"`
}

// ImportCounts are an import's counters; as a delta, what one step added.
type ImportCounts struct {
	Requests       int64            `json:"requests"`        // App API requests answered
	Deliveries     int64            `json:"deliveries"`      // deliveries (or objects) read
	EventsWritten  int64            `json:"events_written"`  // events written
	EventsExisting int64            `json:"events_existing"` // occurrences found already stored
	EventsReplaced int64            `json:"events_replaced"` // imported events dropped for a webhook copy that arrived meanwhile
	Skipped        map[string]int64 `json:"skipped"`         // deliveries not imported, by reason
}

// Add adds d to c.
func (c *ImportCounts) Add(d ImportCounts) {
	c.Requests += d.Requests
	c.Deliveries += d.Deliveries
	c.EventsWritten += d.EventsWritten
	c.EventsExisting += d.EventsExisting
	c.EventsReplaced += d.EventsReplaced
	for k, v := range d.Skipped {
		if c.Skipped == nil {
			c.Skipped = map[string]int64{}
		}
		c.Skipped[k] += v
	}
}

// ImportUnit is the progress of one unit of an import: a window of creation
// times (Unit "<start>/<end>") with the cursor of its next page, or a file
// with the byte offset of its next object.
type ImportUnit struct {
	Unit       string `json:"unit"`
	Position   string `json:"position"`
	Done       bool   `json:"done"`
	Deliveries int64  `json:"deliveries"`
	Events     int64  `json:"events"`
}
