package feed

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults of Poller.
const (
	DefaultPollFirst = 100 * time.Millisecond
	DefaultPollMax   = time.Second
)

// Poller serves waits by polling: after the first poll it waits First,
// then twice as long after each poll that did not finish the wait, up to
// Max. Each delay is shortened by a random 0 to 20 %, so that waiters who
// started together do not poll together. The zero value uses the
// defaults: polls at about 0, 0.1, 0.3 and 0.7 s, then about one a second.
type Poller struct {
	First, Max time.Duration
}

// Wait calls poll until it is done or fails, or ctx ends, backing off
// between polls. It returns poll's error, or nil.
func (p Poller) Wait(ctx context.Context, _ string, poll func() (done bool, err error)) error {
	k := 0
	return wait(ctx, poll, func() <-chan time.Time {
		// The delay runs from before the poll: a slow read does not
		// slow the schedule down. (An unstopped timer is collected once
		// unreachable.)
		d := p.Delay(k, rand.Float64())
		k++
		return time.NewTimer(d).C
	}, nil)
}

// Delay is the wait after the poll numbered k (0 for the first), with r
// in [0, 1) choosing the jitter.
func (p Poller) Delay(k int, r float64) time.Duration {
	first, most := p.First, p.Max
	if first <= 0 {
		first = DefaultPollFirst
	}
	if most <= 0 {
		most = DefaultPollMax
	}
	d := most
	if k < 32 && first<<k < most {
		d = first << k
	}
	return d - time.Duration(r*0.2*float64(d))
}
