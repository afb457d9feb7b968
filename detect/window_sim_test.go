package detect_test

import (
	"context"
	"hash/fnv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/sim/truth"
)

// simPartitions is how many partitions the simulated events topic has.
const simPartitions = 4

// storedSim plays a simulation into ClickHouse as the ingest pipeline
// would store it (each event in the partition its Kafka key hashes to,
// with its offset), slice by slice of event time. After each slice it
// calls after with the event time reached; it returns the truth records.
// Each event goes through the JSON decoder, as in production, unless raw
// is set (the simulator's events are valid; decoding is tested elsewhere).
func storedSim(t testing.TB, conn driver.Conn, db string, cfg sim.Config, slice time.Duration, raw bool, after func(reached time.Time)) []truth.Scenario {
	t.Helper()
	var recs []truth.Scenario
	s, err := sim.New(cfg, sim.WithTruth(func(r truth.Scenario) { recs = append(recs, r) }),
		sim.WithWallClock(func() time.Time { return simStart }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	end := cfg.Start.Add(cfg.Duration)
	dec := schemas.NewDecoder(schemas.DecoderConfig{Now: func() time.Time { return end.Add(time.Hour) }})
	sink := ingest.NewClickHouseSink(conn, db)
	var (
		cols ingest.EventColumns
		buf  []byte
		offs [simPartitions]int64
	)
	ctx := context.Background()
	flush := func(reached time.Time) {
		if err := sink.WriteEvents(ctx, &cols); err != nil {
			t.Fatalf("insert events: %v", err)
		}
		cols.Reset()
		if after != nil {
			after(reached)
		}
	}
	next := cfg.Start.Add(slice)
	for e := s.Next(); e != nil; e = s.Next() {
		for !e.Time.Before(next) {
			flush(next)
			next = next.Add(slice)
		}
		h := fnv.New32a()
		h.Write([]byte(sim.Key(e)))
		p := h.Sum32() % simPartitions
		if raw {
			cols.Append(e, int32(p), offs[p])
		} else {
			buf = schemas.AppendJSON(buf[:0], e)
			var ev schemas.Event
			if err := dec.Decode(buf, &ev); err != nil {
				t.Fatalf("event does not decode: %v\n%s", err, buf)
			}
			cols.Append(&ev, int32(p), offs[p])
		}
		offs[p]++
	}
	flush(end)
	return recs
}

// windowsOf returns window detectors with cfg over db.
func windowsOf(t testing.TB, cfg detect.Config, conn driver.Conn, db string) *detect.Windows {
	t.Helper()
	w, err := detect.NewWindows(cfg, detect.WindowOptions{Conn: conn, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	return w
}
