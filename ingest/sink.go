package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
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
	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
}

// ClickHouseSink writes to the events and dead_letters tables of one database
// over the native protocol with columnar inserts.
type ClickHouseSink struct {
	conn        driver.Conn
	insertEvent string
	insertDead  string
}

// NewClickHouseSink returns a Sink writing to database db through conn.
func NewClickHouseSink(conn driver.Conn, db string) *ClickHouseSink {
	return &ClickHouseSink{
		conn:        conn,
		insertEvent: "INSERT INTO " + db + ".events (" + strings.Join(EventInsertColumns, ", ") + ")",
		insertDead:  "INSERT INTO " + db + ".dead_letters (" + strings.Join(DeadLetterInsertColumns, ", ") + ")",
	}
}

// WriteEvents implements Sink.
func (s *ClickHouseSink) WriteEvents(ctx context.Context, cols *EventColumns) error {
	if cols.Len() == 0 {
		return nil
	}
	return s.insert(ctx, s.insertEvent, cols.Values())
}

// WriteDeadLetters implements Sink.
func (s *ClickHouseSink) WriteDeadLetters(ctx context.Context, dl []DeadLetter) error {
	if len(dl) == 0 {
		return nil
	}
	return s.insert(ctx, s.insertDead, deadLetterValues(dl))
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
