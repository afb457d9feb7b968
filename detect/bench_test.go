package detect_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim"
)

// simEvents generates n decoded events of simulated traffic with every
// stream detector's scenarios in it.
func simEvents(b *testing.B, n int) []schemas.Event {
	b.Helper()
	cfg := sim.Config{Seed: 42, Users: 50000, Rate: 5000, Start: simStart, Duration: time.Duration(n/5000+1) * time.Second,
		Scenarios: []sim.ScenarioSpec{{Name: "token_theft_replay", At: 10 * time.Second}, {Name: "concurrent_hijack", At: 20 * time.Second},
			{Name: "revocation_not_enforced", At: 30 * time.Second}, {Name: "multi_tab_refresh", At: 5 * time.Second}, {Name: "mobile_retry", At: 15 * time.Second}}}
	s, err := sim.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	out := make([]schemas.Event, 0, n)
	for e := s.Next(); e != nil && len(out) < n; e = s.Next() {
		out = append(out, *e)
	}
	return out
}

// BenchmarkStreamDetectors is the cost of judging one event by all three
// stream detectors (ns/op is per event), over simulated traffic; the state
// starts afresh at each pass over the events.
func BenchmarkStreamDetectors(b *testing.B) {
	evs := simEvents(b, 300_000)
	reg, err := detect.NewRegistry(detect.DefaultConfig(), detect.RegistryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := reg.Partition(0)
	var out []detect.Anomaly
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if i == len(evs) {
			i = 0
			b.StopTimer()
			p = reg.Partition(0)
			b.StartTimer()
		}
		out = p.Observe(&evs[i], int64(i), out[:0])
		i++
	}
}

// family i's events: login, one rotation, a validation, from its own client.
// fill puts n families into p.
func fill(p *detect.Partition, n int) {
	for i := range n {
		evs := detect.SyntheticFamily(i, simStart.Add(time.Duration(i)*time.Microsecond))
		for j := range evs {
			p.Observe(&evs[j], 0, nil)
		}
	}
}

// BenchmarkStateBytesPerFamily measures the heap the stream detectors'
// state holds per tracked family with one million families (each logged
// in, rotated once and validated): the bytes/family metric.
func BenchmarkStateBytesPerFamily(b *testing.B) {
	for b.Loop() {
		perFamily, err := detect.StateBytesPerFamily(detect.DefaultConfig(), 1_000_000)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(perFamily, "bytes/family")
	}
}

// BenchmarkReplayToAnomaly is the time from handing a replayed refresh
// token (an exchanged parent presented again from another client) to the
// stream detectors until the critical anomaly comes back, with a million
// families tracked: ns/op is the in-process detection latency.
func BenchmarkReplayToAnomaly(b *testing.B) {
	const n = 1_000_000
	reg, err := detect.NewRegistry(detect.DefaultConfig(), detect.RegistryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := reg.Partition(0)
	fill(p, n)
	replays := make([]schemas.Event, n)
	for i := range replays {
		e := detect.SyntheticFamily(i, simStart.Add(time.Duration(i)*time.Microsecond))[1]
		e.Time = e.Time.Add(time.Minute)
		e.IP, e.ASN, e.Country, e.UserAgent, e.DeviceID = "167.99.10.20", 14061, "US", "python-requests/2.32.3", ""
		e.TokenID = "rtX"
		replays[i] = e
	}
	var out []detect.Anomaly
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if i == n { // every family has raised once: start over
			b.StopTimer()
			p = reg.Partition(0)
			fill(p, n)
			i = 0
			b.StartTimer()
		}
		out = p.Observe(&replays[i], int64(i), out[:0])
		if len(out) != 1 {
			b.Fatalf("replay %d raised %d anomalies", i, len(out))
		}
		i++
	}
}

// BenchmarkWindowRound is the time of one round of the window detectors
// (every rule judging the newest 5 s window end, baselines cached) over
// more than ten million stored events (12.4 M): an hour of simulated traffic with attacks
// and look-alikes, copied onto the same hour of the nine days before (so
// the same-hour-of-earlier-days baselines have history). The cold round
// (baselines fetched from scratch) is reported as cold-ms. Setting up the
// data takes minutes.
func BenchmarkWindowRound(b *testing.B) {
	_, conn, db := testenv.MigratedDatabase(b)
	ctx := context.Background()
	cfg := sim.Config{Seed: 3, Users: 20000, Tenants: 3, Rate: 280, Start: simStart, Duration: time.Hour,
		Scenarios: []sim.ScenarioSpec{{Name: "credential_stuffing", At: 31 * time.Minute}, {Name: "corporate_nat", At: 35 * time.Minute},
			{Name: "reconnect_storm", At: 40 * time.Minute}, {Name: "password_spraying", At: 45 * time.Minute}}}
	storedSim(b, conn, db, cfg, 10*time.Minute, true, nil)
	cols := strings.Join(ingest.EventInsertColumns, ", ")
	for k := 1; k <= 9; k++ {
		shifted := make([]string, len(ingest.EventInsertColumns))
		for i, c := range ingest.EventInsertColumns {
			switch c {
			case "id":
				c = fmt.Sprintf("concat(id, '~%d')", k)
			case "time":
				c = fmt.Sprintf("time - %d", k*86400)
			case "time_ns":
				c = fmt.Sprintf("time_ns - %d", int64(k)*86400e9)
			}
			shifted[i] = c
		}
		if err := conn.Exec(ctx, "INSERT INTO "+db+".events ("+cols+") SELECT "+strings.Join(shifted, ", ")+" FROM "+db+".events WHERE time >= toDateTime(?)", cfg.Start.Unix()); err != nil {
			b.Fatal(err)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events").Scan(&n); err != nil {
		b.Fatal(err)
	}
	// Setup is done once; the sub-benchmark is run with growing counts and
	// moves on from where the last run left (wrapping before the data ends).
	var (
		w    *detect.Windows
		end  time.Time
		cold time.Duration
	)
	fresh := func(b *testing.B) {
		w = windowsOf(b, detect.DefaultConfig(), conn, db)
		end = cfg.Start.Add(30 * time.Minute)
		t0 := time.Now()
		if _, err := w.Evaluate(ctx, end.Add(-5*time.Second), end); err != nil {
			b.Fatal(err)
		}
		cold = time.Since(t0)
	}
	b.Run("round", func(b *testing.B) {
		if w == nil {
			fresh(b)
		}
		b.ResetTimer()
		for range b.N {
			end = end.Add(5 * time.Second)
			if end.After(cfg.Start.Add(cfg.Duration)) {
				b.StopTimer()
				fresh(b)
				b.StartTimer()
			}
			if _, err := w.Evaluate(ctx, time.Time{}, end); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
		b.ReportMetric(float64(n)/1e6, "Mevents")
	})
}
