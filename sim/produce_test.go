package sim

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/truth"
)

// fakeWriter is an in-memory MessageWriter: it copies what it is given
// (the producer reuses its buffers) and stamps each message with the time
// of the write; from write number failAt on it returns err.
type fakeWriter struct {
	failAt int
	err    error

	mu       sync.Mutex
	writes   int
	maxBatch int
	msgs     []kafka.Message
	at       []time.Time
}

func (w *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.err != nil && w.writes >= w.failAt {
		return w.err
	}
	w.maxBatch = max(w.maxBatch, len(msgs))
	for _, m := range msgs {
		w.msgs = append(w.msgs, kafka.Message{Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value)})
		w.at = append(w.at, now)
	}
	return nil
}

func (w *fakeWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

// TestProducerWritesTheStream: the producer writes exactly the simulator's
// stream (compared with a second simulator with the same config), keyed by
// Key, in batches of at most Batch, up to Limit.
func TestProducerWritesTheStream(t *testing.T) {
	f := func(name string, cfg Config, pace Pacing, want func(all int) int) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			w := &fakeWriter{}
			p := NewProducer(s, w, pace)
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			ref, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			end := cfg.Start.Add(cfg.Duration)
			dec := schemas.NewDecoder(schemas.DecoderConfig{Now: func() time.Time { return end }})
			var buf []byte
			var ev schemas.Event
			all := 0
			for e := ref.Next(); e != nil; e = ref.Next() {
				if all < len(w.msgs) {
					m := w.msgs[all]
					buf = schemas.AppendJSON(buf[:0], e)
					if !bytes.Equal(m.Value, buf) {
						t.Fatalf("message %d:\n%s\nwant the simulator's event\n%s", all, m.Value, buf)
					}
					if err := dec.Decode(m.Value, &ev); err != nil {
						t.Fatalf("message %d does not decode: %v\n%s", all, err, m.Value)
					}
					if k := string(m.Key); k != Key(&ev) || ev.FamilyID != "" && k != ev.FamilyID {
						t.Fatalf("message %d has key %q, want %q (family %q)", all, k, Key(&ev), ev.FamilyID)
					}
				}
				all++
			}
			if n := want(all); len(w.msgs) != n || p.Produced() != int64(n) {
				t.Errorf("wrote %d messages, Produced() = %d; want %d (the run has %d)", len(w.msgs), p.Produced(), n, all)
			}
			if batch := cmp.Or(pace.Batch, 2000); w.maxBatch > batch {
				t.Errorf("a write carried %d messages, more than the batch of %d", w.maxBatch, batch)
			}
		})
	}
	cfg := Config{Seed: 21, Users: 2000, Rate: 200, Start: testStart, Duration: time.Minute,
		Scenarios: []ScenarioSpec{{Name: "token_theft_replay", At: 10 * time.Second}, {Name: "credential_stuffing", At: 20 * time.Second}}}
	f("limit", cfg, Pacing{Limit: 5000, Batch: 700}, func(int) int { return 5000 })
	f("whole run", cfg, Pacing{}, func(all int) int { return all })
	f("limit past the end", cfg, Pacing{Limit: 1 << 40, Batch: 333}, func(all int) int { return all })
}

// TestProducerPacing: with Speedup 10, a minute of event time takes six
// seconds, no message is written more than the producer's 2 ms batching
// slack before its due time or long after it, and truth stamps the wall
// time of the first offending event's due time.
func TestProducerPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const speedup = 10
		var recs []truth.Scenario
		cfg := Config{Seed: 22, Users: 2000, Rate: 200, Start: testStart, Duration: time.Minute,
			Scenarios: []ScenarioSpec{{Name: "concurrent_hijack", At: 10 * time.Second, Count: 1}, {Name: "brute_force", At: 20 * time.Second}}}
		s, err := New(cfg, WithTruth(func(r truth.Scenario) { recs = append(recs, r) }))
		if err != nil {
			t.Fatal(err)
		}
		w := &fakeWriter{}
		p := NewProducer(s, w, Pacing{Speedup: speedup})
		start := time.Now()
		due := func(evTime time.Time) time.Time { return start.Add(evTime.Sub(testStart) / speedup) }
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if took := time.Since(start); took < 5900*time.Millisecond || took > 6*time.Second {
			t.Errorf("a minute of event time at speedup 10 took %s, want 6s", took)
		}
		if len(w.msgs) < 10000 || p.Produced() != int64(len(w.msgs)) {
			t.Fatalf("wrote %d messages, Produced() = %d; want a minute at 200/s", len(w.msgs), p.Produced())
		}
		dec := schemas.NewDecoder(schemas.DecoderConfig{Now: func() time.Time { return testStart.Add(time.Hour) }})
		var ev schemas.Event
		var early, late time.Duration
		for i, m := range w.msgs {
			if err := dec.Decode(m.Value, &ev); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			d := w.at[i].Sub(due(ev.Time))
			early, late = min(early, d), max(late, d)
		}
		if early < -2*time.Millisecond || late > 20*time.Millisecond {
			t.Errorf("messages written from %s before to %s after their due time, want within 2ms before and 20ms after", -early, late)
		}
		if len(recs) != 2 {
			t.Fatalf("%d truth records, want 2", len(recs))
		}
		for _, r := range recs {
			if d := r.FirstOffendingWall.Sub(due(r.FirstOffending)); d < -10*time.Millisecond || d > 10*time.Millisecond {
				t.Errorf("%s: first offending wall %s is %s from the event's due time", r.Instance, r.FirstOffendingWall, d)
			}
		}
	})
}

// TestProducerCancel: cancelling the context stops a paced run at once,
// and what was generated is still written.
func TestProducerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{Seed: 23, Users: 2000, Rate: 300, Start: testStart})
		if err != nil {
			t.Fatal(err)
		}
		w := &fakeWriter{}
		p := NewProducer(s, w, Pacing{Speedup: 1})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := p.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run = %v, want the context's deadline", err)
		}
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("Run returned %s after start, want at the 5s deadline", took)
		}
		if st := s.Stats(); w.written() == 0 || int64(w.written()) != st.Events || p.Produced() != st.Events {
			t.Errorf("wrote %d messages, Produced() = %d, the simulator handed out %d; want them all written", w.written(), p.Produced(), st.Events)
		}
	})
}

// TestProducerWriteError: a failed write ends Run with that error at once,
// even for an endless run.
func TestProducerWriteError(t *testing.T) {
	boom := errors.New("broker unavailable")
	f := func(name string, pace Pacing, failAt int) {
		t.Run(name, func(t *testing.T) {
			s, err := New(Config{Seed: 24, Users: 2000, Rate: 1000, Start: time.Now().Add(-time.Minute)}) // no Duration: endless
			if err != nil {
				t.Fatal(err)
			}
			w := &fakeWriter{err: boom, failAt: failAt}
			p := NewProducer(s, w, pace)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			deadline := time.NewTimer(10 * time.Second)
			defer deadline.Stop()
			select {
			case err := <-done:
				if !errors.Is(err, boom) {
					t.Errorf("Run = %v, want the write error", err)
				}
			case <-deadline.C:
				cancel()
				<-done
				t.Fatal("Run did not return within 10s of a failed write")
			}
			if p.Produced() != int64(w.written()) || w.writes < failAt {
				t.Errorf("Produced() = %d after %d writes, %d messages acknowledged", p.Produced(), w.writes, w.written())
			}
		})
	}
	f("first write", Pacing{Batch: 100}, 1)
	f("later write", Pacing{Batch: 100}, 5)
	f("paced", Pacing{Speedup: 50, Batch: 100}, 3)
}
