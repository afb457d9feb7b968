package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
)

// latencyOptions says how to measure replay → revocation.
type latencyOptions struct {
	// Brokers serve the topics session-events (4 partitions), vigil.dlq
	// and vigil.actions; ClickHouse and Database hold the tables.
	Brokers    []string
	ClickHouse string
	Database   string
	// Thefts is how many replays to time; Rate the background events/s.
	Thefts, Rate int
}

// revokeAll is a session service that revokes whatever it is asked to.
type revokeAll struct{}

func (revokeAll) Revoke(sessionapi.Request, time.Time) (sessionapi.Outcome, bool) {
	return sessionapi.Revoked, true
}

// measureTimeToRevoke runs vigil's whole pipeline in this process (ingest,
// token_reuse, outbox, revoker, HTTP adapter) against the simulator's
// session API, under o.Rate events/s of background traffic, and times each
// theft from its replayed refresh token handed to Kafka to its family's
// revocation arriving at the API. Thefts start every 100 ms; each replay
// comes half a second after its rotation.
func measureTimeToRevoke(ctx context.Context, o latencyOptions) (bench.Latency, error) {
	var mu sync.Mutex
	arrived := map[string]time.Time{} // family → revocation received
	api, err := sessionapi.New(sessionapi.DefaultConfig(), revokeAll{},
		sessionapi.WithRecorder(func(r truth.Revocation) {
			mu.Lock()
			defer mu.Unlock()
			arrived[r.FamilyID] = r.ReceivedAt
		}))
	if err != nil {
		return bench.Latency{}, err
	}
	if err := api.Start(ctx); err != nil {
		return bench.Latency{}, err
	}
	defer api.Shutdown(context.Background())

	cfg := config.Default()
	cfg.Kafka.Brokers = o.Brokers
	cfg.ClickHouse.Addr = []string{o.ClickHouse}
	cfg.ClickHouse.Database = o.Database
	cfg.Admin.Listen = ""
	cfg.Revoke.Adapter = revoke.AdapterConfig{Kind: revoke.AdapterHTTP, URL: "http://" + api.Addr(), AllowHTTP: true, Timeout: 5 * time.Second}
	cfg.Revoke.MaxActions = 1_000_000
	cfg.Revoke.RateLimit = 1000
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	env := &cmdEnv{stdout: io.Discard, stderr: io.Discard, getenv: func(string) (string, bool) { return "", false }}
	p, err := startPipeline(ctx, &cfg, env, slog.New(slog.DiscardHandler), true, allRoles)
	if err != nil {
		return bench.Latency{}, err
	}
	defer p.stop(context.Background())

	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Brokers...), kgo.DefaultProduceTopic("session-events"), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return bench.Latency{}, err
	}
	defer cl.Close()
	for deadline := time.Now().Add(time.Minute); p.admin.Ready() != nil; {
		if time.Now().After(deadline) {
			return bench.Latency{}, fmt.Errorf("bench: the pipeline not ready after a minute: %w", p.admin.Ready())
		}
		select {
		case <-ctx.Done():
			return bench.Latency{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}

	// Background: Rate/100 events every 10 ms.
	bgCtx, stopBG := context.WithCancel(ctx)
	defer stopBG()
	bgDone := make(chan int, 1)
	go func() {
		s := sim.NewStream(sim.StreamConfig{Seed: 5, Users: 20_000, Start: time.Now().UTC(), Step: 50 * time.Microsecond})
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-bgCtx.Done():
				bgDone <- n
				return
			case <-t.C:
			}
			for range o.Rate / 100 {
				m := s.Next()
				cl.Produce(bgCtx, &kgo.Record{Key: m.Key, Value: m.Value}, nil)
				n++
			}
		}
	}()
	bgStart := time.Now()

	theft := func(i int) (prelude []*kgo.Record, replay *kgo.Record, family string) {
		created, rotation, rp := schemas.TokenTheft(time.Now().UTC().Add(-20 * time.Second))
		family = fmt.Sprintf("bench-f%d", i)
		for _, e := range []*schemas.Event{&created, &rotation, &rp} {
			e.ID = fmt.Sprintf("bench-%d-%s", i, e.ID)
			e.UserID, e.SessionID, e.FamilyID = fmt.Sprintf("bench-u%d", i), fmt.Sprintf("bench-s%d", i), family
		}
		rec := func(e *schemas.Event) *kgo.Record {
			return &kgo.Record{Key: []byte(e.FamilyID), Value: schemas.AppendJSON(nil, e)}
		}
		return []*kgo.Record{rec(&created), rec(&rotation)}, rec(&rp), family
	}
	n := o.Thefts
	sent := make([]time.Time, n)
	families := make([]string, n)
	replays := make([]*kgo.Record, n)
	tick := time.NewTicker(100 * time.Millisecond)
	for i := 0; i < n+5; i++ {
		if i < n {
			pre, rp, fam := theft(i)
			if err := cl.ProduceSync(ctx, pre...).FirstErr(); err != nil {
				tick.Stop()
				return bench.Latency{}, err
			}
			replays[i], families[i] = rp, fam
		}
		if j := i - 5; j >= 0 { // the replay of the theft started 500 ms ago
			sent[j] = time.Now()
			if err := cl.ProduceSync(ctx, replays[j]).FirstErr(); err != nil {
				tick.Stop()
				return bench.Latency{}, err
			}
		}
		<-tick.C
	}
	tick.Stop()
	for deadline := time.Now().Add(time.Minute); ; {
		mu.Lock()
		got := 0
		for _, f := range families {
			if _, ok := arrived[f]; ok {
				got++
			}
		}
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			return bench.Latency{}, fmt.Errorf("bench: %d of %d thefts revoked after a minute", got, n)
		}
		select {
		case <-ctx.Done():
			return bench.Latency{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopBG()
	bg := <-bgDone
	bgRate := float64(bg) / time.Since(bgStart).Seconds()
	mu.Lock()
	lat := make([]time.Duration, n)
	for i, f := range families {
		lat[i] = arrived[f].Sub(sent[i])
	}
	mu.Unlock()
	if n == 0 {
		return bench.Latency{}, errors.New("bench: no thefts to time")
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(int(p*float64(n)), n-1)] }
	return bench.Latency{Thefts: n, Background: bgRate, P50: q(0.5), P99: q(0.99), Max: lat[n-1]}, nil
}
