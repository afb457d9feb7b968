package sim

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigilhq/vigil/schemas"
)

// MessageWriter is the part of *kafka.Writer the producer needs; a write
// returns only once the messages are acknowledged (or failed).
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Pacing says how event time maps to the wall clock while producing.
type Pacing struct {
	// Speedup runs event time this many times faster than the wall clock;
	// 0 produces as fast as Kafka takes it.
	Speedup float64
	// Batch is the most messages handed to one write; default 2000.
	Batch int
	// Limit stops after this many messages; 0 means no limit.
	Limit int64
}

// Producer encodes a Simulator's events and writes them to Kafka, paced so
// that event time advances Speedup times faster than the wall clock.
type Producer struct {
	sim      *Simulator
	w        MessageWriter
	pace     Pacing
	produced atomic.Int64
}

// NewProducer returns a producer of s's events to w.
func NewProducer(s *Simulator, w MessageWriter, p Pacing) *Producer {
	if p.Batch <= 0 {
		p.Batch = 2000
	}
	return &Producer{sim: s, w: w, pace: p}
}

// Produced returns how many messages Kafka has acknowledged so far; safe
// from any goroutine.
func (p *Producer) Produced() int64 { return p.produced.Load() }

// maxHold is how long a paced message may wait for its batch to fill.
const maxHold = 5 * time.Millisecond

// chunk is one batch of encoded messages and the bytes they point into.
type chunk struct {
	msgs []kafka.Message
	buf  []byte
}

// Run produces until the simulation's duration is over (nil) or ctx ends
// (ctx's error). Encoding overlaps with writing: one batch is written while
// the next is generated. The batches in flight when ctx ends are still
// written, so every event the simulator handed out (and the truth may
// refer to) reaches Kafka.
func (p *Producer) Run(ctx context.Context) error {
	s := p.sim
	wallStart := time.Now()
	simStart := s.start
	full := make(chan *chunk, 1)
	free := make(chan *chunk, 2)
	for range 2 {
		free <- &chunk{msgs: make([]kafka.Message, 0, p.pace.Batch), buf: make([]byte, 0, 1<<20)}
	}
	var failed atomic.Pointer[error] // the first write error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for c := range full {
			if failed.Load() == nil && len(c.msgs) > 0 {
				if err := p.w.WriteMessages(context.WithoutCancel(ctx), c.msgs...); err != nil {
					err = fmt.Errorf("simulate: produce %d messages: %w", len(c.msgs), err)
					failed.Store(&err)
				} else {
					p.produced.Add(int64(len(c.msgs)))
				}
			}
			c.msgs, c.buf = c.msgs[:0], c.buf[:0]
			free <- c
		}
	}()
	cur := <-free
	var generated int64
	var batchStart time.Time
	// flush hands the current batch to the writer; it fails fast once a
	// write failed.
	flush := func() error {
		if len(cur.msgs) > 0 {
			full <- cur
			cur = <-free
		}
		if err := failed.Load(); err != nil {
			return *err
		}
		return nil
	}
	finish := func(err error) error {
		if len(cur.msgs) > 0 {
			full <- cur
		}
		close(full)
		<-writerDone
		if werr := failed.Load(); werr != nil {
			return *werr
		}
		return err
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if ctx.Err() != nil {
			return finish(ctx.Err())
		}
		if p.pace.Limit > 0 && generated >= p.pace.Limit {
			return finish(nil)
		}
		e := s.Next()
		if e == nil {
			return finish(nil)
		}
		if p.pace.Speedup > 0 {
			due := wallStart.Add(time.Duration(float64(e.Time.UnixNano()-simStart) / p.pace.Speedup))
			if wait := time.Until(due); wait > 2*time.Millisecond {
				if err := flush(); err != nil {
					return finish(err)
				}
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
			}
		}
		if len(cur.msgs) == 0 {
			batchStart = time.Now()
		}
		// Key and value go into the batch's buffer (no allocation per
		// event); buf may grow (move), and earlier messages keep the old
		// array alive.
		k := len(cur.buf)
		cur.buf = append(cur.buf, Key(e)...)
		v := len(cur.buf)
		cur.buf = schemas.AppendJSON(cur.buf, e)
		cur.msgs = append(cur.msgs, kafka.Message{Key: cur.buf[k:v:v], Value: cur.buf[v:len(cur.buf):len(cur.buf)]})
		generated++
		// Paced, a message waits at most maxHold for its batch to fill:
		// what a session service does, and what time-to-detect measures.
		if len(cur.msgs) == cap(cur.msgs) || len(cur.buf) > 900<<10 || p.pace.Speedup > 0 && time.Since(batchStart) > maxHold {
			if err := flush(); err != nil {
				return finish(err)
			}
		}
	}
}
