package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/detect"
)

// Sink makes batches durable.
//
// Implementations must be safe for concurrent use by all partition workers.
// A nil error means every row is durable and the offsets that produced them
// may be committed; any error is treated as retryable and the same rows are
// offered again (so a Sink must tolerate a retry of a write that in fact
// succeeded: vigil's tables deduplicate). The Sink does not retain the
// slices it is given after returning.
type Sink interface {
	// WriteEvents inserts the rows of cols.
	WriteEvents(ctx context.Context, cols *EventColumns) error
	// WriteDeadLetters inserts rejected messages.
	WriteDeadLetters(ctx context.Context, dl []DeadLetter) error
	// WriteAnomalies inserts the anomalies the stream detectors raised on a batch.
	WriteAnomalies(ctx context.Context, as []detect.Anomaly) error
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
}

// ClickHouseSink writes to the events and dead_letters tables of one database
// over the native protocol with columnar inserts.
type ClickHouseSink struct {
	conn        driver.Conn
	insertEvent string
	insertDead  string
	insertAnom  string
}

// NewClickHouseSink returns a Sink writing to database db through conn.
func NewClickHouseSink(conn driver.Conn, db string) *ClickHouseSink {
	return &ClickHouseSink{
		conn:        conn,
		insertEvent: "INSERT INTO " + db + ".events (" + strings.Join(EventInsertColumns, ", ") + ")",
		insertDead:  "INSERT INTO " + db + ".dead_letters (" + strings.Join(DeadLetterInsertColumns, ", ") + ")",
		insertAnom:  "INSERT INTO " + db + ".anomalies (" + strings.Join(detect.AnomalyInsertColumns, ", ") + ")",
	}
}

// WriteEvents implements Sink.
func (s *ClickHouseSink) WriteEvents(ctx context.Context, cols *EventColumns) error {
	if cols.Len() == 0 {
		return nil
	}
	return insertSplitting(cols.Len(), func(i, j int) error {
		return s.insert(ctx, s.insertEvent, cols.view(i, j).Values())
	})
}

// WriteDeadLetters implements Sink.
func (s *ClickHouseSink) WriteDeadLetters(ctx context.Context, dl []DeadLetter) error {
	if len(dl) == 0 {
		return nil
	}
	return insertSplitting(len(dl), func(i, j int) error {
		return s.insert(ctx, s.insertDead, deadLetterValues(dl[i:j]))
	})
}

// WriteAnomalies implements Sink.
func (s *ClickHouseSink) WriteAnomalies(ctx context.Context, as []detect.Anomaly) error {
	if len(as) == 0 {
		return nil
	}
	return insertSplitting(len(as), func(i, j int) error {
		return s.insert(ctx, s.insertAnom, detect.AnomalyValues(as[i:j]))
	})
}

// insertSplitting inserts rows [0, n) with insert. When ClickHouse refuses a
// block because its rows fall into too many day partitions
// (max_partitions_per_insert_block, e.g. a backfill spanning months), it
// inserts each half separately, down to single rows, instead of failing the
// same batch forever.
func insertSplitting(n int, insert func(i, j int) error) error {
	var rec func(i, j int) error
	rec = func(i, j int) error {
		err := insert(i, j)
		if err == nil || j-i <= 1 || !isTooManyPartitions(err) {
			return err
		}
		m := i + (j-i)/2
		if err := rec(i, m); err != nil {
			return err
		}
		return rec(m, j)
	}
	return rec(0, n)
}

// isTooManyPartitions recognises "Too many partitions for single INSERT
// block" (code 252, which also means the transient "Too many parts").
func isTooManyPartitions(err error) bool {
	var ex *chgo.Exception
	return errors.As(err, &ex) && ex.Code == 252 && strings.Contains(ex.Message, "partitions for single INSERT block")
}

// Ping implements Sink.
func (s *ClickHouseSink) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// insert builds a fresh clickhouse-go batch each time: a batch whose Send
// failed cannot be sent again.
func (s *ClickHouseSink) insert(ctx context.Context, query string, values []any) error {
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	for i, v := range values {
		if err := b.Column(i).Append(v); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append column %d: %w", i, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("send insert: %w", err)
	}
	return nil
}
