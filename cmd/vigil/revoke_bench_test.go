package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
)

// BenchmarkTimeToRevoke measures the closed loop of `vigil run` in one
// process (ingest, token_reuse, outbox, revoker, HTTP adapter): from a
// replayed refresh token being handed to Kafka to its family's revocation
// arriving at the session API, under a background load of 20,000 events/s
// (sim.Stream, 4 partitions). Each iteration is one theft; thefts start
// every 100 ms, their replay half a second after the rotation. Reports
// p50, p99 and max in milliseconds. Run with -benchtime=300x.
func BenchmarkTimeToRevoke(b *testing.B) {
	srv := testenv.ClickHouse(b)
	_, brokers := testenv.Kafka(b, map[string]int{"session-events": 4, "vigil.dlq": 1, "vigil.actions": 1})
	db := testenv.Database(b)

	var mu sync.Mutex
	arrived := map[string]time.Time{} // family → revocation received
	api, err := sessionapi.New(sessionapi.DefaultConfig(), targetFunc(func(sessionapi.Request) sessionapi.Outcome { return sessionapi.Revoked }),
		sessionapi.WithRecorder(func(r truth.Revocation) {
			mu.Lock()
			defer mu.Unlock()
			arrived[r.FamilyID] = r.ReceivedAt
		}))
	if err != nil {
		b.Fatal(err)
	}
	if err := api.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer api.Shutdown(context.Background())

	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.ClickHouse.Addr = []string{srv.Addr()}
	cfg.ClickHouse.Database = db
	cfg.Admin.Listen = ""
	cfg.Revoke.Adapter = revoke.AdapterConfig{Kind: revoke.AdapterHTTP, URL: "http://" + api.Addr(), AllowHTTP: true, Timeout: 5 * time.Second}
	cfg.Revoke.MaxActions = 1_000_000
	cfg.Revoke.RateLimit = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := &cmdEnv{stdout: io.Discard, stderr: io.Discard, getenv: func(string) (string, bool) { return "", false }}
	p, err := startPipeline(ctx, &cfg, env, slog.New(slog.DiscardHandler), true, allRoles)
	if err != nil {
		b.Fatal(err)
	}
	defer p.stop(context.Background())

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("session-events"), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	testenv.WaitFor(b, time.Minute, "the pipeline ready", func() (bool, string) {
		err := p.admin.Ready()
		return err == nil, fmt.Sprint(err)
	})

	// Background: 200 events every 10 ms.
	bgCtx, stopBG := context.WithCancel(ctx)
	bgDone := make(chan int)
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
			for range 200 {
				m := s.Next()
				cl.Produce(bgCtx, &kgo.Record{Key: m.Key, Value: m.Value}, nil)
				n++
			}
		}
	}()

	theft := func(i int) (prelude []*kgo.Record, replay *kgo.Record, family string) {
		created, rotation, rp := testenv.TokenTheft(time.Now().UTC().Add(-20 * time.Second))
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
	sent := make([]time.Time, b.N)
	families := make([]string, b.N)
	replays := make([]*kgo.Record, b.N)
	b.ResetTimer()
	tick := time.NewTicker(100 * time.Millisecond)
	for i := 0; i < b.N+5; i++ {
		if i < b.N {
			pre, rp, fam := theft(i)
			if err := cl.ProduceSync(ctx, pre...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			replays[i], families[i] = rp, fam
		}
		if j := i - 5; j >= 0 { // the replay of the theft started 500 ms ago
			sent[j] = time.Now()
			if err := cl.ProduceSync(ctx, replays[j]).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
		<-tick.C
	}
	tick.Stop()
	testenv.WaitFor(b, time.Minute, "every theft's revocation", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, f := range families {
			if _, ok := arrived[f]; ok {
				n++
			}
		}
		return n == b.N, fmt.Sprintf("%d of %d", n, b.N)
	})
	b.StopTimer()
	stopBG()
	bg := <-bgDone
	mu.Lock()
	lat := make([]float64, b.N)
	for i, f := range families {
		lat[i] = float64(arrived[f].Sub(sent[i])) / float64(time.Millisecond)
	}
	mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(int(p*float64(len(lat))), len(lat)-1)] }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	b.ReportMetric(float64(bg)/(float64(b.N+5)*0.1), "background-ev/s")
}
