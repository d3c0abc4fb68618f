package feed

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPollerSchedule(t *testing.T) {
	var p Poller // the defaults
	var at time.Duration
	var polls []time.Duration
	for k := 0; at < 5*time.Second; k++ {
		polls = append(polls, at)
		at += p.Delay(k, 0) // no jitter
	}
	want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond,
		1500 * time.Millisecond, 2500 * time.Millisecond, 3500 * time.Millisecond, 4500 * time.Millisecond}
	if len(polls) != len(want) {
		t.Fatalf("polls at %v, want %v", polls, want)
	}
	for i := range want {
		if polls[i] != want[i] {
			t.Fatalf("polls at %v, want %v", polls, want)
		}
	}
	// Jitter shortens a delay by at most a fifth; large k does not
	// overflow.
	for _, k := range []int{0, 3, 4, 40, 1 << 20} {
		d, full := p.Delay(k, 0.999), p.Delay(k, 0)
		if d > full || d < full*4/5 || full > DefaultPollMax {
			t.Fatalf("delay %d: %v of %v", k, d, full)
		}
	}
	custom := Poller{First: 10 * time.Millisecond, Max: 25 * time.Millisecond}
	if d := custom.Delay(1, 0); d != 20*time.Millisecond {
		t.Fatalf("custom delay 1: %v", d)
	}
	if d := custom.Delay(2, 0); d != 25*time.Millisecond {
		t.Fatalf("custom delay 2: %v", d)
	}
}

func TestPollerWait(t *testing.T) {
	p := Poller{First: time.Millisecond, Max: 2 * time.Millisecond}
	polls := 0
	err := p.Wait(context.Background(), "s", func() (bool, error) { polls++; return polls == 5, nil })
	if err != nil || polls != 5 {
		t.Fatalf("%d polls, %v", polls, err)
	}
	pollErr := errors.New("cannot read")
	if err := p.Wait(context.Background(), "s", func() (bool, error) { return false, pollErr }); err != pollErr {
		t.Fatalf("poll error: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := (Poller{}).Wait(ctx, "s", func() (bool, error) { return false, nil }); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a wait of 50 ms took %v", d)
	}
}
