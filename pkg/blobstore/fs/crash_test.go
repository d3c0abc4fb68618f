//go:build unix

package fsblob_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
)

// crashEnv names the store directory of a crash test child process.
const crashEnv = "FSBLOB_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// version returns blob version i: its number, up to 1 MiB of bytes that
// depend on it, and a SHA-256 of all that, so that a torn, mixed or
// truncated blob is detected.
func version(i uint64, maxSize int) []byte {
	size := int(i*7919) % maxSize
	b := binary.BigEndian.AppendUint64(nil, i)
	for j := range size {
		b = append(b, byte(uint64(j)*31+i))
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// parseVersion checks a blob made by version and returns its number.
func parseVersion(b []byte) (uint64, error) {
	if len(b) < 8+sha256.Size {
		return 0, fmt.Errorf("%d bytes: too short", len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return 0, fmt.Errorf("%d bytes: bad checksum (torn or mixed)", len(b))
	}
	return binary.BigEndian.Uint64(body), nil
}

// crashChild writes versions of blobs until it is killed, printing
// "ack <i>" once WriteBlob of version i of "big" has returned.
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	s, err := fsblob.Open(dir, fsblob.Options{})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	root, err := s.Sheet("s")
	if err != nil {
		fail(err)
	}
	i := uint64(1)
	if b, err := root.ReadBlob(ctx, "big"); err == nil {
		n, err := parseVersion(b)
		if err != nil {
			fail(err)
		}
		i = n + 1
	}
	for ; ; i++ {
		if err := root.WriteBlob(ctx, "big", version(i, 1<<20)); err != nil {
			fail(err)
		}
		fmt.Printf("ack %d\n", i)
		d, err := root.GetDir(ctx, "d")
		if err == nil {
			d, err = d.GetDir(ctx, strconv.FormatUint(i%3, 10))
		}
		if err == nil {
			err = d.WriteBlob(ctx, "small", version(i, 4096))
		}
		if err == nil && i%2 == 0 {
			err = copyAtOnce(ctx, d, "small")
		}
		if err == nil && i%4 == 0 {
			err = blobstore.Copy(ctx, root, "copy", root, "big")
		}
		if err == nil && i%5 == 0 {
			if d, err = root.GetDir(ctx, "d"); err == nil {
				if d, err = d.GetDir(ctx, strconv.FormatUint((i+1)%3, 10)); err == nil {
					err = d.RemoveAll(ctx)
				}
			}
		}
		if err != nil {
			fail(err)
		}
	}
}

// copyAtOnce copies name in d to c/0 to c/3 below d, concurrently, as
// a snapshot copies its tiles (their fsyncs are shared).
func copyAtOnce(ctx context.Context, d blobstore.BlobDir, name string) error {
	c, err := d.GetDir(ctx, "c")
	if err != nil {
		return err
	}
	errc := make(chan error, 4)
	for k := range 4 {
		go func() { errc <- blobstore.Copy(ctx, c, strconv.Itoa(k), d, name) }()
	}
	for range 4 {
		if e := <-errc; e != nil {
			err = e
		}
	}
	return err
}

// TestCrashSafety kills a child process that writes, copies (some
// concurrently into one directory) and removes blobs (with fsync) at
// random moments, with SIGKILL, and reopens the
// store each time: every blob must be one whole version, "big" at least
// the last version acknowledged, and no temporary file may remain. A
// process crash keeps the page cache, so this checks the atomicity of
// the rename protocol, not fsync (which only a power cut would test).
func TestCrashSafety(t *testing.T) {
	dir := diskDir(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const cycles = 16
	leftovers := 0
	for cycle := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked atomic.Uint64
		first, ended := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(ended)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
					v, _ := strconv.ParseUint(n, 10, 64)
					if acked.Swap(v) == 0 {
						close(first)
					}
				}
			}
		}()
		select {
		case <-first:
		case <-ended:
		case <-time.After(20 * time.Second):
		}
		if acked.Load() == 0 {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: the child acknowledged nothing: %s", cycle, stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if strings.Contains(stderr.String(), "crash child:") {
			t.Fatalf("cycle %d: the child failed: %s", cycle, stderr.String())
		}
		last := acked.Load()
		if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) > 0 {
			leftovers++
		}
		checkAfterCrash(t, dir, cycle, last)
	}
	t.Logf("%d of %d kills left temporary files behind (killed mid-write)", leftovers, cycles)
}

func checkAfterCrash(t *testing.T, dir string, cycle int, last uint64) {
	t.Helper()
	s, err := fsblob.Open(dir, fsblob.Options{})
	if err != nil {
		t.Fatalf("cycle %d: reopening: %v", cycle, err)
	}
	defer s.Close()
	if es, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(es) > 0 {
		t.Errorf("cycle %d: tmp/ holds %d entries after Open", cycle, len(es))
	}
	ctx := t.Context()
	root := sheet(t, s, "s")
	b, err := root.ReadBlob(ctx, "big")
	if err != nil {
		t.Fatalf("cycle %d: ReadBlob(big): %v", cycle, err)
	}
	v, err := parseVersion(b)
	switch {
	case err != nil:
		t.Errorf("cycle %d: big: %v", cycle, err)
	case v != last && v != last+1:
		t.Errorf("cycle %d: big is version %d, want the last acknowledged (%d) or the one in flight", cycle, v, last)
	}
	snap := map[string][]byte{}
	var walk func(d blobstore.BlobDir, prefix string)
	walk = func(d blobstore.BlobDir, prefix string) {
		blobs, dirs := list(t, d)
		for _, n := range blobs {
			b, err := d.ReadBlob(ctx, n)
			if err != nil {
				t.Errorf("cycle %d: ReadBlob(%s%s), listed: %v", cycle, prefix, n, err)
			}
			snap[prefix+n] = b
		}
		for _, n := range dirs {
			walk(sheet(t, s, "s", strings.Split(prefix+n, "/")...), prefix+n+"/")
		}
	}
	walk(root, "")
	for p, b := range snap {
		if _, err := parseVersion(b); err != nil {
			t.Errorf("cycle %d: %s: %v", cycle, p, err)
		}
		if p != "big" && p != "copy" && !strings.HasPrefix(p, "d/") {
			t.Errorf("cycle %d: unexpected blob %s", cycle, p)
		}
	}
}
