package detect_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
)

// TestClickHouseHistoryRebuild runs the rebuild cases against the real
// queries: each history is stored in the events table as one partition
// (offset = index), inserted twice as a replayed batch would be, and
// every cut must resume exactly.
func TestClickHouseHistoryRebuild(t *testing.T) {
	_, conn, db := testenv.MigratedDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sink := ingest.NewClickHouseSink(conn, db)
	hist := detect.NewClickHouseHistory(conn, db)
	for i, tc := range rebuildCases() {
		var cols ingest.EventColumns
		for off := range tc.evs {
			cols.Append(&tc.evs[off], int32(i), int64(off))
		}
		for range 2 {
			if err := sink.WriteEvents(ctx, &cols); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(tc.name, func(t *testing.T) { checkRebuild(t, tc, int32(i), hist) })
	}
}
