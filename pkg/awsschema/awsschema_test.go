package awsschema

import (
	"fmt"
	"testing"
)

// pinnedShard is PendingShard("sheet-1", 99) as the first release wrote it.
const pinnedShard = 12

// Pending entries spread over every shard: whatever the sheets, the
// busiest shard holds not much more than its fair share.
func TestPendingShardSpread(t *testing.T) {
	counts := make([]int, PendingShards)
	n := 0
	for s := range 200 {
		for seq := uint64(0); seq < 2000; seq += 100 { // a snapshot every 100 entries
			sh := PendingShard(fmt.Sprintf("sheet-%d", s), seq)
			if sh < 0 || sh >= PendingShards {
				t.Fatalf("shard %d out of range", sh)
			}
			counts[sh]++
			n++
		}
	}
	fair := n / PendingShards
	for sh, c := range counts {
		if c < fair*3/4 || c > fair*5/4 {
			t.Errorf("shard %d holds %d of %d entries; fair share %d", sh, c, n, fair)
		}
	}
	// One sheet alone spreads too.
	one := map[int]bool{}
	for seq := uint64(0); seq < 10000; seq += 100 {
		one[PendingShard("busy", seq)] = true
	}
	if len(one) != PendingShards {
		t.Errorf("one sheet's 100 snapshots use %d of %d shards", len(one), PendingShards)
	}
	// The value is part of the stored layout: it must never change.
	if got := PendingShard("sheet-1", 99); got != pinnedShard {
		t.Errorf("PendingShard(sheet-1, 99) = %d; it was %d when items were written with it", got, pinnedShard)
	}
}
