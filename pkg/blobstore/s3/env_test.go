package s3blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"

	"github.com/sheetlog/sheetlog/internal/awscost"
)

// emulator is an S3 endpoint the tests run against: fresh(t) returns a
// config and an empty bucket of its own.
type emulator struct {
	name  string
	fresh func(t *testing.T) (aws.Config, string)
	// modelChecks, when not 0, is the number of runs of the conformance
	// suite's model test on this emulator, instead of rapid's default
	// 100: each run is a few hundred requests, which costs seconds on an
	// emulator out of process. The in-process one runs the full count.
	modelChecks int
}

// emulators lists gofakes3 (always) and the moto server.
func emulators(t *testing.T) []emulator {
	t.Helper()
	return append([]emulator{{name: "gofakes3", fresh: gofakes3Bucket}}, otherEmulators(t)...)
}

// gofakes3Bucket serves a fresh gofakes3 in-process on the bolt backend:
// its memory backend repeats a common prefix when a delimiter listing page
// ends on one. gofakes3 does not check signatures, so any credentials do.
func gofakes3Bucket(t *testing.T) (aws.Config, string) {
	t.Helper()
	// NoSync: a test bucket needs no durability, and fsync per put makes
	// the suite several times slower.
	db, err := bolt.Open(filepath.Join(t.TempDir(), "s3.bolt"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(&boltNoAlias{Backend: s3bolt.New(db)}).Server())
	t.Cleanup(func() {
		srv.Close()
		db.Close()
	})
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(srv.URL),
	}
	return cfg, createBucket(t, cfg, "sheetlog-test")
}

// boltNoAlias works around a memory-safety bug of gofakes3's bolt backend
// (v1.2.0): GetObject and HeadObject return contents and hashes that alias
// bolt's memory map after the read transaction has ended, so a write that
// remaps or reuses those pages (any concurrent write, or the put inside its
// own CopyObject) turns them into garbage or a SIGSEGV. Here a read copies
// its bytes while no write can run, and CopyObject copies before it puts.
// S3 semantics are the backend's own; only the aliasing is removed.
type boltNoAlias struct {
	mu sync.RWMutex
	*s3bolt.Backend
}

func (b *boltNoAlias) GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return detach(b.Backend.GetObject(bucket, key, rng))
}

func (b *boltNoAlias) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return detach(b.Backend.HeadObject(bucket, key))
}

func detach(o *gofakes3.Object, err error) (*gofakes3.Object, error) {
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(o.Contents)
	o.Contents.Close()
	if err != nil {
		return nil, err
	}
	o.Contents = io.NopCloser(bytes.NewReader(data))
	o.Hash = bytes.Clone(o.Hash)
	return o, nil
}

func (b *boltNoAlias) PutObject(bucket, key string, meta map[string]string, in io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.PutObject(bucket, key, meta, in, size, cond)
}

func (b *boltNoAlias) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteObject(bucket, key)
}

func (b *boltNoAlias) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Backend.DeleteMulti(bucket, keys...)
}

func (b *boltNoAlias) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	src, err := detach(b.Backend.GetObject(srcBucket, srcKey, nil))
	if err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	if _, err := b.Backend.PutObject(dstBucket, dstKey, meta, src.Contents, src.Size, nil); err != nil {
		return gofakes3.CopyObjectResult{}, err
	}
	return gofakes3.CopyObjectResult{ETag: gofakes3.FormatETag(src.Hash), LastModified: gofakes3.NewContentTime(time.Now())}, nil
}

var bucketSeq atomic.Int64

// runID tells this test binary's buckets from those of earlier runs on a
// long-lived emulator.
var runID = fmt.Sprintf("%08x", rand.Uint32())

// createBucket creates a new bucket named after prefix and returns its
// name.
func createBucket(t *testing.T, cfg aws.Config, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%s-%d", prefix, runID, bucketSeq.Add(1))
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("creating bucket %s: %v", name, err)
	}
	return name
}

// forEach runs fn once per emulator, as subtests.
func forEach(t *testing.T, fn func(t *testing.T, em emulator)) {
	for _, em := range emulators(t) {
		t.Run(em.name, func(t *testing.T) {
			t.Parallel()
			fn(t, em)
		})
	}
}

// newStore opens a Store on a fresh bucket of em with a small page and
// short retry delays.
func newStore(t *testing.T, em emulator, opts Options) *Store {
	t.Helper()
	cfg, bucket := em.fresh(t)
	return storeOn(t, cfg, bucket, opts)
}

func storeOn(t *testing.T, cfg aws.Config, bucket string, opts Options) *Store {
	t.Helper()
	opts.UsePathStyle = true
	if opts.PageSize == 0 {
		opts.PageSize = 2
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 20 * 1e6 // 20ms
	}
	if opts.BaseDelay == 0 {
		opts.BaseDelay = 1e6 // 1ms
	}
	s, err := New(cfg, bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// requestCounter counts S3 requests by operation (internal/awscost: every
// HTTP attempt).
type requestCounter struct {
	c    *awscost.Counter
	last awscost.Usage
}

func newRequestCounter() *requestCounter {
	c := awscost.New()
	return &requestCounter{c: c, last: c.Snapshot()}
}

func (r *requestCounter) clientOption(o *s3.Options) { r.c.S3Option(o) }

// take returns the usage since the last take.
func (r *requestCounter) takeUsage() awscost.Usage {
	u := r.c.Since(r.last)
	r.last = r.c.Snapshot()
	return u
}

// take returns the counts since the last take as "Op=n ...", sorted.
func (r *requestCounter) take() string { return usageString(r.takeUsage()) }

func usageString(u awscost.Usage) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(u.Requests)) {
		parts = append(parts, fmt.Sprintf("%s=%d", op, u.Requests[op]))
	}
	return strings.Join(parts, " ")
}
