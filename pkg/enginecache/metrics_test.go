package enginecache_test

import (
	"context"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/metrics"
)

func gauge(t *testing.T, name string) int64 {
	t.Helper()
	for _, f := range metrics.Default.Gather(false) {
		if f.Name == name {
			return int64(f.Series[0].Value)
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The cache gauges follow Len and Bytes through loads, evictions and
// removals.
func TestMetricsFollowTheCache(t *testing.T) {
	s := newStores()
	for _, sh := range []string{"a", "b", "c"} {
		s.fill(t, sh, 50)
	}
	engines0, bytes0 := gauge(t, "sheetlog_engine_cache_engines"), gauge(t, "sheetlog_engine_cache_bytes")
	check := func(c *enginecache.Cache, when string) {
		t.Helper()
		engines := gauge(t, "sheetlog_engine_cache_engines") - engines0
		bytes := gauge(t, "sheetlog_engine_cache_bytes") - bytes0
		if engines != int64(c.Len()) || bytes != int64(c.Bytes()) {
			t.Fatalf("%s: gauges %d engines, %d bytes; the cache holds %d, %d", when, engines, bytes, c.Len(), c.Bytes())
		}
	}
	c := enginecache.New(s.factory, enginecache.Options{MaxEngines: 2})
	ctx := context.Background()
	for _, sh := range []string{"a", "b", "c"} {
		if err := c.Do(ctx, sh, load); err != nil {
			t.Fatal(err)
		}
		check(c, "after "+sh)
	}
	if c.Len() != 2 || c.Bytes() == 0 {
		t.Fatalf("Len %d Bytes %d", c.Len(), c.Bytes())
	}
	c.Remove("c")
	check(c, "after Remove")
	c.Remove("b")
	check(c, "after removing everything")
	if c.Len() != 0 {
		t.Fatal("not empty")
	}
}
