package eventlogtest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// checkTimeout bounds one porcupine check. The histories are small enough
// to be decided in milliseconds, so running out of time means something
// is badly wrong, not that the checker is slow.
const checkTimeout = 30 * time.Second

// porcupineModel is the sequential model as porcupine wants it. A call
// that failed with a StorageError may or may not have taken effect, so it
// steps to both states.
var porcupineModel = (&porcupine.NondeterministicModel{
	Init: func() []any { return []any{mState{}} },
	Step: func(state, input, output any) []any {
		s, o, r := state.(mState), input.(op), output.(reply)
		n, want := step(s, o)
		if r.ambiguous() {
			if n.equal(s) {
				return []any{s}
			}
			return []any{s, n}
		}
		if matches(o, want, r) != nil {
			return nil
		}
		return []any{n}
	},
	Equal: func(a, b any) bool { return a.(mState).equal(b.(mState)) },
	Hash:  func(s any) uint64 { return s.(mState).hash() },
	DescribeOperation: func(input, output any) string {
		o, r := input.(op), output.(reply)
		return fmt.Sprintf("%s → %s", o, r.describe(o))
	},
	DescribeState: func(s any) string { return s.(mState).String() },
}).ToModel()

// testLinearizability records histories of several clients calling every
// operation of the log at once, batch appends included (each one
// operation), and checks each against the model.
func (s *suite) testLinearizability(t *testing.T) {
	for run := range s.cfg.historyRuns {
		t.Run(fmt.Sprint("History", run), func(t *testing.T) {
			seed := rand.Uint64()
			log := s.newLog(t)
			history := recordHistory(t.Context(), log, s.cfg.historyClients, s.cfg.historyOp, seed)
			for _, o := range history {
				if r := o.Output.(reply); r.err != nil && r.errTag != errs.TypeConflict && r.errTag != errs.TypeRange && r.errTag != errs.TypeStorage {
					t.Fatalf("%s failed with %v (%T), which no valid call of this history can", o.Input.(op), r.err, r.err)
				}
			}
			res, info := porcupine.CheckOperationsVerbose(porcupineModel, history, checkTimeout)
			switch res {
			case porcupine.Ok:
				return
			case porcupine.Illegal:
				t.Errorf("history of %d operations (seed %d) is not linearizable against the sequential model", len(history), seed)
			default:
				t.Errorf("checking %d operations (seed %d) did not finish in %v; such a small history is normally decided in milliseconds",
					len(history), seed, checkTimeout)
			}
			writeVisualization(t, info)
		})
	}
}

func writeVisualization(t *testing.T, info porcupine.LinearizationInfo) {
	f, err := os.CreateTemp("", "eventlog-history-*.html")
	if err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return
	}
	defer f.Close()
	if err := porcupine.Visualize(porcupineModel, info, f); err != nil {
		t.Logf("cannot write the visualization: %v", err)
		return
	}
	t.Logf("visualization of the history: %s", f.Name())
}

// recordHistory runs clients goroutines of ops calls each against log and
// returns the history. Each client draws its calls from what it has
// learned (the next id, the newest snapshot), so that most calls hit the
// interesting edges of the log rather than fail on range checks.
func recordHistory(ctx context.Context, log eventlog.EventLog, clients, ops int, seed uint64) []porcupine.Operation {
	var (
		clock   atomic.Int64
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			g := &clientGen{rnd: rand.New(rand.NewPCG(seed, uint64(c))), client: c}
			for i := range ops {
				o := g.draw(i)
				if g.rnd.IntN(3) == 0 {
					runtime.Gosched()
				}
				callAt := clock.Add(1)
				r := call(ctx, log, o)
				retAt := clock.Add(1)
				g.learn(o, r)
				if r.ambiguous() {
					if o.kind == opQuery {
						continue // a failed read constrains nothing
					}
					// A write that failed in the store may take effect
					// at any time later.
					retAt = math.MaxInt64
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: o, Call: callAt, Output: r, Return: retAt})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return history
}

// clientGen draws one client's calls.
type clientGen struct {
	rnd      *rand.Rand
	client   int
	nextID   uint64 // the log's next id as far as this client knows
	firstID  uint64
	snapshot uint64
}

func (g *clientGen) id(lo, hi uint64) eventlog.SequenceID {
	if hi < lo {
		hi = lo
	}
	return eventlog.SequenceID(lo + g.rnd.Uint64N(hi-lo+1))
}

func (g *clientGen) knownArg() *eventlog.SequenceID {
	switch g.rnd.IntN(4) {
	case 0:
		return nil
	case 1:
		return known(0)
	case 2:
		return known(g.snapshot)
	}
	return eventlog.Known(g.id(g.firstID, g.nextID))
}

func (g *clientGen) draw(i int) op {
	r := g.rnd
	low := g.firstID
	if low > 0 {
		low--
	}
	switch n := r.IntN(100); {
	case n < 35:
		id := eventlog.SequenceID(g.nextID)
		if r.IntN(8) == 0 && g.nextID > 0 {
			id -= eventlog.SequenceID(r.IntN(2) + 1)
		} else if r.IntN(8) == 0 {
			id++
		}
		// A third of the appends are batches of 2 to 4 entries, as one
		// operation of the history; at most one entry of a batch
		// requests a workflow, as the contract allows.
		n, kind := 1, opAdd
		if r.IntN(3) == 0 {
			n, kind = 2+r.IntN(3), opAddBatch
		}
		es := make([]eventlog.Entry, n)
		pending := false
		for j := range es {
			es[j].Body = fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":%d}`, g.client, i, j)
			switch r.IntN(6) {
			case 0:
				if !pending {
					es[j].Pending, pending = eventlog.WorkflowSnapshot, true
				}
			case 1:
				es[j].Snapshot = fmt.Sprintf("b%d.%d.%d", g.client, i, j)
			}
		}
		o := op{kind: kind, id: id, known: g.knownArg()}
		if kind == opAdd {
			o.entry = es[0]
		} else {
			o.entries = es
		}
		return o
	case n < 55:
		u := eventlog.MetadataUpdate{}
		switch r.IntN(5) {
		case 0:
			u = eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, fmt.Sprintf("w%d.%d", g.client, i))
		case 1:
			u.Snapshot = eventlog.Set(fmt.Sprintf("s%d.%d", g.client, i))
		case 2:
			u.Snapshot = eventlog.Clear()
		case 3:
			u.Pending = eventlog.Set(eventlog.WorkflowSnapshot)
			u.History = eventlog.Set("h")
		case 4:
			u.History = eventlog.Set(fmt.Sprintf("h%d.%d", g.client, i))
			u.IfPending = eventlog.WorkflowSnapshot
		}
		return op{kind: opSetMetadata, id: g.id(low, g.nextID), upd: u}
	case n < 92:
		o := op{kind: opQuery, known: g.knownArg()}
		switch r.IntN(4) {
		case 0:
			o.from = eventlog.FromStart
		case 1, 2:
			o.from = eventlog.FromSnapshot
		default:
			o.from = eventlog.FromID(g.id(low, g.nextID+1))
		}
		if r.IntN(3) == 0 {
			o.to = eventlog.ToID(g.id(low, g.nextID+2))
		}
		return o
	default:
		return op{kind: opTruncate, id: g.id(low, g.nextID)}
	}
}

// learn updates what the client knows from a reply.
func (g *clientGen) learn(o op, r reply) {
	if r.next != 0 {
		g.nextID = max(g.nextID, r.next)
	}
	if r.errTag != "" {
		return
	}
	if r.last != nil {
		g.snapshot = uint64(r.last.SequenceID)
	}
	switch o.kind {
	case opAdd:
		g.nextID = max(g.nextID, uint64(o.id)+1)
	case opAddBatch:
		g.nextID = max(g.nextID, uint64(o.id)+uint64(len(o.entries)))
	case opQuery:
		if _, ok := o.from.ID(); !ok && !o.from.IsSnapshot() {
			g.firstID = max(g.firstID, uint64(r.page.Start))
		}
		if _, bounded := o.to.ID(); r.page.Complete && !bounded {
			g.nextID = max(g.nextID, uint64(r.page.End))
		}
	case opTruncate:
		g.firstID = max(g.firstID, uint64(o.id))
	}
}
