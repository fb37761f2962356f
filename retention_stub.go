package audit

import "time"

// WithRetention keeps the log for d (0: forever). In this branch it only
// sets the period that WithCompliance checks; the retention helper's
// retention.go defines the real option (this file is deleted at merge).
func WithRetention(d time.Duration) Option {
	return func(c *config) { c.retention = d }
}
