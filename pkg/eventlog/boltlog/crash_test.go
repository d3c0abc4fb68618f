package boltlog

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// The crash test re-runs this test binary as a child process that writes
// to the store from several goroutines and reports on stdout every write
// the store acknowledged, then SIGKILLs it at a random moment, reopens the
// file and checks it against the reports. Cycles accumulate in one file.
//
// A killed process loses nothing the kernel already holds, so this checks
// that commits are atomic (a batch append is all in or all out) and that
// nothing is acknowledged before its commit, at every point a process can
// die (including during Open). It
// cannot check what a power cut would lose: that rests on bbolt's commit
// order (data pages, fdatasync, meta page, fdatasync), which the store
// never weakens (NoSync stays false).
//
// Child protocol, one line per write(2) so a kill never splits a line:
//
//	R                      the store is open
//	A sheet id sha256      append acknowledged (hash of the body; one
//	                       line per entry of a batch)
//	C sheet id             completion of the workflow at id acknowledged
//	t sheet start          about to truncate (an upper bound for first)
//	T sheet start          truncation acknowledged
const (
	crashChildEnv  = "BOLTLOG_CRASH_CHILD"  // the file, in the child
	crashCyclesEnv = "BOLTLOG_CRASH_CYCLES" // number of kills (default 20)
	crashSheets    = 4
	crashWriters   = 8 // two per sheet, so appends also conflict
	// The child exits by itself after this, so a lost parent leaves no
	// orphan behind.
	crashChildLifetime = time.Minute
)

func crashBlob(sheet string, id eventlog.SequenceID) string {
	return fmt.Sprintf("blob-%s-%d", sheet, id)
}

// crashBody is the body of the entry a child appends at sheet/id. Its
// "sum" lets the parent tell a torn body from a whole one even when the
// child was killed before reporting it.
// At and N place the entry in the batch it was appended with (N = 1 for
// a single append), so that the parent can tell a batch that is half in.
type crashBody struct {
	Type   string              `json:"type"`
	Sheet  string              `json:"sheet"`
	ID     eventlog.SequenceID `json:"id"`
	At     eventlog.SequenceID `json:"at"`
	N      int                 `json:"n"`
	Writer int                 `json:"w"`
	Pad    string              `json:"pad"`
	Sum    uint32              `json:"sum"`
}

func TestCrashRecovery(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	cycles := 20
	if v := os.Getenv(crashCyclesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashCyclesEnv, v)
		}
		cycles = n
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	st := newCrashState()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	began := time.Now()
	for cycle := range cycles {
		lines := runAndKill(t, exe, path, cycle, rng)
		st.absorb(t, lines)
		st.check(t, path, cycle)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d cycles in %v: %d appends, %d completions, %d truncations acknowledged; %d kills before the store was open",
		cycles, time.Since(began).Round(time.Millisecond), st.appends, st.completions, st.truncations, st.earlyKills)
	if st.appends < cycles {
		t.Fatalf("only %d appends acknowledged in %d cycles: the child barely ran", st.appends, cycles)
	}
}

// runAndKill starts a child on path, kills it at a random moment and
// returns the complete lines it printed.
func runAndKill(t *testing.T, exe, path string, cycle int, rng *rand.Rand) []string {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestCrashRecovery$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var lines []string
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // a fragment without its newline was never acknowledged
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "R" {
				close(ready)
			}
			lines = append(lines, line)
		}
	}()

	// Most kills land while the writers run; some land early, while the
	// child starts or opens (and perhaps recovers) the file. The first
	// cycle always lets the file come into being.
	var delay time.Duration
	if cycle > 0 && rng.IntN(5) == 0 {
		delay = time.Duration(rng.IntN(40)) * time.Millisecond
	} else {
		select {
		case <-ready:
		case <-readDone:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("cycle %d: the child did not open the store in 30s; stderr:\n%s", cycle, stderr.String())
		}
		delay = time.Duration(5+rng.IntN(300)) * time.Millisecond
	}
	select {
	case <-readDone:
		// The child closed its stdout: it died on its own.
		_ = cmd.Wait()
		t.Fatalf("cycle %d: the child exited before it was killed (%v); stderr:\n%s", cycle, cmd.ProcessState, stderr.String())
	case <-time.After(delay):
	}
	// If the child died on its own just now, Wait below says how.
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-readDone
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("cycle %d: the child ended with %v, not SIGKILL; stderr:\n%s", cycle, err, stderr.String())
	}
	return lines
}

// crashState is what the parent knows from every report so far.
type crashState struct {
	acked       map[string]map[eventlog.SequenceID]string // sheet -> id -> body hash
	completed   map[string]map[eventlog.SequenceID]bool
	truncIntent map[string]eventlog.SequenceID // highest start ever attempted
	truncAcked  map[string]eventlog.SequenceID // highest start acknowledged

	appends, completions, truncations, earlyKills int
}

func newCrashState() *crashState {
	return &crashState{
		acked: map[string]map[eventlog.SequenceID]string{}, completed: map[string]map[eventlog.SequenceID]bool{},
		truncIntent: map[string]eventlog.SequenceID{}, truncAcked: map[string]eventlog.SequenceID{},
	}
}

func (st *crashState) absorb(t *testing.T, lines []string) {
	t.Helper()
	if len(lines) == 0 || lines[0] != "R" {
		st.earlyKills++
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == "R" {
			continue
		}
		if len(f) < 3 {
			t.Fatalf("child printed %q", line)
		}
		sheet := f[1]
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		id := eventlog.SequenceID(n)
		switch {
		case f[0] == "A" && len(f) == 4:
			if st.acked[sheet] == nil {
				st.acked[sheet] = map[eventlog.SequenceID]string{}
			}
			if prev, dup := st.acked[sheet][id]; dup && prev != f[3] {
				t.Fatalf("%s/%d acknowledged twice with different bodies", sheet, id)
			}
			st.acked[sheet][id] = f[3]
			st.appends++
		case f[0] == "C":
			if st.completed[sheet] == nil {
				st.completed[sheet] = map[eventlog.SequenceID]bool{}
			}
			st.completed[sheet][id] = true
			st.completions++
		case f[0] == "t":
			st.truncIntent[sheet] = max(st.truncIntent[sheet], id)
		case f[0] == "T":
			st.truncAcked[sheet] = max(st.truncAcked[sheet], id)
			st.truncations++
		default:
			t.Fatalf("child printed %q", line)
		}
	}
}

// check reopens the file and holds it to everything the children
// reported: it opens cleanly and passes Verify (bbolt's page check, dense
// ids, indexes agreeing with entries); every acknowledged append is there
// with its body unless an attempted truncation may have removed it; every
// entry's body is whole; acknowledged completions are there, and every
// cleared pending carries its snapshot; Pending lists exactly the entries
// with pending set.
func (st *crashState) check(t *testing.T, path string, cycle int) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler), PageSize: 500})
	if err != nil {
		t.Fatalf("cycle %d: reopen: %v", cycle, err)
	}
	defer s.Close()
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("cycle %d: %v", cycle, err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("cycle %d: "+format, append([]any{cycle}, args...)...)
	}
	wantPending := map[string]bool{}
	for i := range crashSheets {
		sheet := fmt.Sprintf("crash-%d", i)
		l, err := s.Log(sheet)
		if err != nil {
			t.Fatal(err)
		}
		first, entries := all(t, l, eventlog.FromStart)
		if first < st.truncAcked[sheet] || first > st.truncIntent[sheet] {
			fail("%s starts at %d; truncations acknowledged up to %d, attempted up to %d", sheet, first, st.truncAcked[sheet], st.truncIntent[sheet])
		}
		next := first + eventlog.SequenceID(len(entries))
		for id, hash := range st.acked[sheet] {
			if id < first {
				continue
			}
			if id >= next {
				fail("%s/%d was acknowledged but the log ends at %d", sheet, id, next)
			}
			sum := sha256.Sum256(entries[id-first].Body)
			if hex.EncodeToString(sum[:]) != hash {
				fail("%s/%d holds %.80s..., not the acknowledged body", sheet, id, entries[id-first].Body)
			}
		}
		for i, e := range entries {
			id := first + eventlog.SequenceID(i)
			var b crashBody
			if err := json.Unmarshal(e.Body, &b); err != nil {
				fail("%s/%d: body does not parse: %v", sheet, id, err)
			}
			if b.Sheet != sheet || b.ID != id || crc32.ChecksumIEEE([]byte(b.Pad)) != b.Sum {
				fail("%s/%d: torn or misplaced body (sheet %q, id %d, sum ok %v)", sheet, id, b.Sheet, b.ID, crc32.ChecksumIEEE([]byte(b.Pad)) == b.Sum)
			}
			// A batch is all in or all out; only a truncation may have
			// removed its beginning.
			if b.N < 1 || id < b.At || id >= b.At+eventlog.SequenceID(b.N) || b.At+eventlog.SequenceID(b.N) > next {
				fail("%s/%d: entry of the batch of %d at %d, but the log ends at %d: the batch is half in", sheet, id, b.N, b.At, next)
			}
			md := e.Metadata
			switch {
			case md.History != "":
				fail("%s/%d: history %q was never written", sheet, id, md.History)
			case md.Pending != "" && (md.Pending != eventlog.WorkflowSnapshot || md.Snapshot != ""):
				fail("%s/%d: metadata %+v", sheet, id, md)
			case md.Pending == "" && md.Snapshot != "" && md.Snapshot != crashBlob(sheet, id):
				fail("%s/%d: snapshot %q", sheet, id, md.Snapshot)
			case st.completed[sheet][id] && (md.Pending != "" || md.Snapshot == ""):
				fail("%s/%d: completion acknowledged, metadata is %+v", sheet, id, md)
			}
			if md.Pending != "" {
				wantPending[fmt.Sprintf("%s/%d", sheet, id)] = true
			}
		}
	}
	ps, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		k := fmt.Sprintf("%s/%d", p.Sheet, p.SequenceID)
		if !wantPending[k] || p.Workflow != eventlog.WorkflowSnapshot {
			fail("Pending lists %+v", p)
		}
		delete(wantPending, k)
	}
	if len(wantPending) > 0 {
		fail("Pending misses %v", wantPending)
	}
	if err := s.Close(); err != nil {
		fail("close: %v", err)
	}
}

// crashChild is the child process: it writes until it is killed.
func crashChild(path string) {
	die := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
		os.Exit(3)
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		line := fmt.Appendf(nil, format+"\n", args...)
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := os.Stdout.Write(line); err != nil {
			die("stdout: %v", err)
		}
	}
	time.AfterFunc(crashChildLifetime, func() { die("not killed after %v", crashChildLifetime) })
	s, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler), LockTimeout: 20 * time.Second})
	if err != nil {
		die("open: %v", err)
	}
	say("R")
	var wg sync.WaitGroup
	for w := range crashWriters {
		sheet := fmt.Sprintf("crash-%d", w%crashSheets)
		l, err := s.Log(sheet)
		if err != nil {
			die("%v", err)
		}
		wg.Go(func() { crashWriter(l, sheet, w, say, die) })
	}
	wg.Wait()
}

func crashWriter(l eventlog.EventLog, sheet string, w int, say, die func(string, ...any)) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
	var next eventlog.SequenceID
	for {
		// A third of the appends are batches of 2 to 6 entries.
		n := 1
		if rng.IntN(3) == 0 {
			n = 2 + rng.IntN(5)
		}
		batch := make([]eventlog.Entry, n)
		for i := range batch {
			// Mostly small bodies, some spanning several pages.
			size := rng.IntN(300)
			if rng.IntN(10) == 0 {
				size = rng.IntN(20000)
			}
			pad := make([]byte, size)
			for j := range pad {
				pad[j] = "0123456789abcdef"[rng.IntN(16)]
			}
			b, err := json.Marshal(crashBody{Type: "Crash", Sheet: sheet, ID: next + eventlog.SequenceID(i), At: next, N: n, Writer: w, Pad: string(pad), Sum: crc32.ChecksumIEEE(pad)})
			if err != nil {
				die("%v", err)
			}
			batch[i].Body = b
		}
		// At most one entry of a batch requests a workflow.
		pendingAt := -1
		if rng.IntN(6) == 0 {
			pendingAt = rng.IntN(n)
			batch[pendingAt].Pending = eventlog.WorkflowSnapshot
		}
		var err error
		if n == 1 {
			_, err = l.AddEntry(ctx, next, batch[0], nil)
		} else {
			_, err = l.AddEntries(ctx, next, batch, nil)
		}
		var c *errs.ConflictError
		switch {
		case errors.As(err, &c):
			next = eventlog.SequenceID(c.NextSequenceID)
			continue
		case err != nil:
			die("append %s/%d (%d entries): %v", sheet, next, n, err)
		}
		for i, e := range batch {
			sum := sha256.Sum256(e.Body)
			say("A %s %d %x", sheet, next+eventlog.SequenceID(i), sum)
		}
		at := next
		next += eventlog.SequenceID(n)

		if pendingAt >= 0 && rng.IntN(2) == 0 {
			id := at + eventlog.SequenceID(pendingAt)
			ok, err := l.SetMetadata(ctx, id, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, crashBlob(sheet, id)))
			switch {
			case err != nil && !isType[*errs.RangeError](err): // a truncation may have passed it
				die("complete %s/%d: %v", sheet, id, err)
			case ok:
				say("C %s %d", sheet, id)
			}
		}
		if rng.IntN(12) == 0 && next > 60 {
			start := next - 60
			say("t %s %d", sheet, start)
			err := l.Truncate(ctx, start)
			switch {
			case err == nil:
				say("T %s %d", sheet, start)
			case !isType[*errs.RangeError](err): // the other writer went further
				die("truncate %s to %d: %v", sheet, start, err)
			}
		}
	}
}
