package api

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// feeds are the ways of waiting: the notifier the single-machine server
// uses, with the waiting requests detached from their connections as
// there or in their goroutines, and the poller every other deployment
// gets by default.
var feeds = []struct {
	name           string
	notify, detach bool
}{{"detached", true, true}, {"notifier", true, false}, {"poller", false, false}}

// waitingGet starts a GET in its own goroutine; its reply arrives on the
// returned channel.
func (f *fixture) waitingGet(target string) <-chan reply {
	out := make(chan reply, 1)
	go func() { out <- f.do("GET", target, "") }()
	return out
}

func awaitReply(t *testing.T, c <-chan reply) reply {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no reply")
		return reply{}
	}
}

// settle gives a waiting request time to reach its wait (the poller has
// no count of its waiters).
func (f *fixture) settle(t *testing.T, waiters int) {
	t.Helper()
	if f.notifier == nil {
		time.Sleep(50 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.notifier.Waiters() != waiters {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", f.notifier.Waiters(), waiters)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFeedWakesOnAppend: a request waiting at the log's next id is
// answered by the append that puts an entry there, with every entry
// appended by then (a whole batch), and well before its wait is over.
func TestFeedWakesOnAppend(t *testing.T) {
	for _, fd := range feeds {
		t.Run(fd.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{interval: 100, notify: fd.notify, detach: fd.detach})
			f.post("s1", "0", setCell(0, 0, `"value":1`))
			start := time.Now()
			c := f.waitingGet("/v1/sheets/s1/log?start=1&wait=20")
			other := f.waitingGet("/v1/sheets/s2/log?start=0&wait=20&end=end")
			f.settle(t, 2)
			if fd.detach && f.detacher.Held() != 2 {
				t.Fatalf("%d requests detached, want the 2 waiting", f.detacher.Held())
			}
			if r := f.do("POST", "/v1/sheets/s1/log", entriesBody("1", 3, 1, `"value":2`)); r.status != 200 {
				t.Fatalf("append: %d %s", r.status, r.body)
			}
			r := awaitReply(t, c)
			if r.status != 200 || time.Since(start) > 10*time.Second {
				t.Fatalf("after %v: %d %s", time.Since(start), r.status, r.body)
			}
			jsonEq(t, r.json(t), `{"startSequenceId":"1","endSequenceId":"4","isComplete":true,"entries":[`+
				setCell(1, 0, `"value":2`)+`,`+setCell(1, 1, `"value":2`)+`,`+setCell(1, 2, `"value":2`)+`]}`)
			// The other sheet's waiter is still waiting.
			select {
			case r := <-other:
				t.Fatalf("the other sheet's waiter replied: %d %s", r.status, r.body)
			default:
			}
			f.post("s2", "0", setCell(0, 0, `"value":3`))
			r = awaitReply(t, other)
			jsonEq(t, r.json(t), `{"startSequenceId":"0","endSequenceId":"1","isComplete":true,"entries":[`+setCell(0, 0, `"value":3`)+`]}`)
		})
	}
}

// TestFeedTimesOut: with nothing appended the reply is the same empty,
// complete page a request without wait gets.
func TestFeedTimesOut(t *testing.T) {
	for _, fd := range feeds {
		t.Run(fd.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{interval: 2, notify: fd.notify, detach: fd.detach, maxWait: 300 * time.Millisecond})
			for i := range 3 {
				f.post("s1", itoa(i), setCell(i, 0, `"value":1`))
				f.wait()
			}
			want := f.do("GET", "/v1/sheets/s1/log?start=3&snapshotId=0", "")
			start := time.Now()
			r := f.do("GET", "/v1/sheets/s1/log?start=3&snapshotId=0&wait=1", "")
			if took := time.Since(start); r.status != 200 || took < 300*time.Millisecond {
				t.Fatalf("after %v: %d %s", took, r.status, r.body)
			}
			if string(r.body) != string(want.body) {
				t.Fatalf("timed-out wait: %s, without wait: %s", r.body, want.body)
			}
			jsonEq(t, r.json(t), `{"startSequenceId":"3","endSequenceId":"3","isComplete":true,
				"lastSnapshot":{"sequenceId":"2","blobId":"2"},"entries":[]}`)
		})
	}
}

// TestFeedAnswersAtOnce: when the page is not empty, or the start is
// outside the log, wait changes nothing.
func TestFeedAnswersAtOnce(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 100, notify: true})
	for i := range 3 {
		f.post("s1", itoa(i), setCell(i, 0, `"value":1`))
	}
	start := time.Now()
	page := f.get("/v1/sheets/s1/log?start=1&wait=20")
	if page["endSequenceId"] != "3" || len(page["entries"].([]any)) != 2 {
		t.Fatalf("page %v", page)
	}
	if r := f.do("GET", "/v1/sheets/s1/log?start=4&wait=20", ""); r.status != 416 {
		t.Fatalf("start beyond the log: %d %s", r.status, r.body)
	}
	jsonEq(t, f.get("/v1/sheets/s1/log?start=3&wait=0"), `{"startSequenceId":"3","endSequenceId":"3","isComplete":true,"entries":[]}`)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
}

// TestFeedKeepsClearOfTheDeadline: a request whose context ends sooner
// than its wait (the API Lambda's invocation deadline) is answered
// before the deadline, with the empty page.
func TestFeedKeepsClearOfTheDeadline(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 100})
	ctx, cancel := context.WithTimeout(context.Background(), feedReplyMargin+300*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/v1/sheets/s1/log?start=0&wait=20", nil)
	start := time.Now()
	r := f.serve(req, nil)
	if took := time.Since(start); r.status != 200 || ctx.Err() != nil || took > feedReplyMargin {
		t.Fatalf("after %v (ctx %v): %d %s", took, ctx.Err(), r.status, r.body)
	}
	jsonEq(t, r.json(t), `{"startSequenceId":"0","endSequenceId":"0","isComplete":true,"entries":[]}`)
}

// TestFeedRelease: a server shutting down lets its waiters go at once,
// each with its empty page.
func TestFeedRelease(t *testing.T) {
	for _, detach := range []bool{false, true} {
		t.Run(map[bool]string{false: "notifier", true: "detached"}[detach], func(t *testing.T) {
			feedRelease(t, newFixture(t, fixtureOptions{interval: 100, notify: true, detach: detach}))
		})
	}
}

func feedRelease(t *testing.T, f *fixture) {
	var cs []<-chan reply
	for range 20 {
		cs = append(cs, f.waitingGet("/v1/sheets/s1/log?start=0&wait=20"))
	}
	f.settle(t, 20)
	start := time.Now()
	f.notifier.Release()
	for _, c := range cs {
		r := awaitReply(t, c)
		jsonEq(t, r.json(t), `{"startSequenceId":"0","endSequenceId":"0","isComplete":true,"entries":[]}`)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("released waiters took %v", took)
	}
}
