package ingest

import (
	"errors"
	"fmt"
	"testing"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
)

// TestInsertSplitting: a block refused for spanning too many partitions is
// halved until every insert is accepted; other errors are returned as they are.
func TestInsertSplitting(t *testing.T) {
	tooMany := &chgo.Exception{Code: 252, Message: "Too many partitions for single INSERT block (more than 100)."}
	f := func(n, maxRows int, other error, wantRows int, wantErr error) {
		t.Helper()
		inserted := 0
		err := insertSplitting(n, func(i, j int) error {
			if other != nil {
				return other
			}
			if j-i > maxRows {
				return fmt.Errorf("send insert: %w", tooMany)
			}
			inserted += j - i
			return nil
		})
		if !errors.Is(err, wantErr) || inserted != wantRows {
			t.Errorf("n=%d max=%d: inserted %d, err %v; want %d, %v", n, maxRows, inserted, err, wantRows, wantErr)
		}
	}
	f(1000, 1000, nil, 1000, nil)
	f(1000, 100, nil, 1000, nil)
	f(1000, 1, nil, 1000, nil)
	transient := &chgo.Exception{Code: 252, Message: "Too many parts (300). Merges are processing significantly slower than inserts"}
	f(1000, 1000, transient, 0, transient)
}
