package jwtauth

import (
	"context"
	"time"
)

// WithClock makes a verifier read the time from now.
func WithClock(o Options, now func() time.Time) Options {
	o.now = now
	return o
}

// Refresh reads the key set again now, as the schedule does.
func Refresh(ctx context.Context, v *Verifier) error { return v.keys.refresh(ctx) }
