package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/internal/chserver"
	"github.com/vigilhq/vigil/internal/testenv"
)

// TestBenchCommand runs every part of `vigil bench` on a small topic, as
// `make bench` does on a large one: the vigil binary (vigil run as a child),
// ClickHouse's Kafka engine in a private server, the kcat pipe, latency and
// memory. It checks what each part reports, not how fast (figures are
// measured by make bench, never asserted).
func TestBenchCommand(t *testing.T) {
	if _, err := chserver.Binary(); err != nil {
		testenv.Missing(t, "clickhouse-server", err)
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		testenv.Missing(t, "kcat", err)
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	const events = 10_000
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--events", "10000", "--runs", "2", "--thefts", "10",
		"--background", "500", "--families", "100000", "--format", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vigil bench: %v\n%s", err, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if rep.Events != events || rep.Runs != 2 || rep.EventBytes < 100 {
		t.Errorf("report header: %d events, %d runs, %.0f bytes each", rep.Events, rep.Runs, rep.EventBytes)
	}
	names := []string{}
	for _, c := range rep.Throughput {
		names = append(names, c.Name)
		if c.Skipped != "" {
			t.Errorf("%s skipped: %s", c.Name, c.Skipped)
			continue
		}
		// vigil and the pipe lose nothing; 18.16's Kafka engine may drop a message.
		lossless := c.Name != "kafka-engine"
		if c.Events+c.Lost != events || (lossless && c.Lost != 0) || c.EventsPerSec <= 0 || len(c.Runs) != 2 {
			t.Errorf("%s: %d stored, %d lost, %.0f events/s, runs %v", c.Name, c.Events, c.Lost, c.EventsPerSec, c.Runs)
		}
		if c.ServerCPU <= 0 || c.ServerPeakRSS <= 0 || c.CPUPerMillion <= 0 {
			t.Errorf("%s: server CPU %s, server peak RSS %d, CPU per million %s", c.Name, c.ServerCPU, c.ServerPeakRSS, c.CPUPerMillion)
		}
		if c.Name == "vigil" && c.StoredBytesPerEvent <= 0 {
			t.Errorf("vigil: no ClickHouse bytes per event")
		}
		if c.Name != "kafka-engine" && (c.ClientCPU <= 0 || c.PeakRSS <= 0) {
			t.Errorf("%s: client CPU %s, peak RSS %d", c.Name, c.ClientCPU, c.PeakRSS)
		}
	}
	if got := strings.Join(names, ","); got != "vigil,kafka-engine,pipe" {
		t.Errorf("contenders %s, want vigil,kafka-engine,pipe", got)
	}
	if rep.Ratios["kafka-engine"] <= 0 || rep.Ratios["pipe"] <= 0 {
		t.Errorf("ratios %v", rep.Ratios)
	}
	if l := rep.Latency; l == nil || l.Thefts != 10 || l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
		t.Errorf("latency %+v", rep.Latency)
	}
	if m := rep.Memory; m == nil || m.Families != 100_000 || m.BytesPerFamily <= 0 {
		t.Errorf("memory %+v", rep.Memory)
	}
}
