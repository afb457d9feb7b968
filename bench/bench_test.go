package bench_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/internal/golden"
)

// sink keeps burn's work from being optimized away.
var sink uint64

// burn spins for a while without sleeping or allocating.
func burn() {
	x := sink | 1
	for i := 0; i < 1_000_000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	sink = x
}

func TestReadUsageSelf(t *testing.T) {
	u0, err := bench.ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u0.PeakRSS <= 0 {
		t.Errorf("PeakRSS %d, want > 0", u0.PeakRSS)
	}
	if u0.CPU < 0 {
		t.Errorf("CPU %v, want ≥ 0", u0.CPU)
	}
	// The kernel counts CPU in ticks (10 ms): burn until one more is
	// counted. The deadline only stops a broken ReadUsage from spinning
	// forever; it is not what is asserted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		burn()
		u, err := bench.ReadUsage(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if u.CPU > u0.CPU {
			break
		}
		if u.CPU < u0.CPU {
			t.Fatalf("CPU went from %v back to %v", u0.CPU, u.CPU)
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU stayed at %v after burning CPU for 10 s", u.CPU)
		}
	}
}

func TestReadUsageNoProcess(t *testing.T) {
	// PIDs are below pid_max, which is at most 1<<22 (PID_MAX_LIMIT).
	for _, pid := range []int{1 << 22, -1} {
		if u, err := bench.ReadUsage(pid); err == nil {
			t.Errorf("ReadUsage(%d) = %+v, want an error", pid, u)
		}
		if err := bench.ResetPeakRSS(pid); err == nil {
			t.Errorf("ResetPeakRSS(%d): no error", pid)
		}
	}
}

func TestResetPeakRSSSelf(t *testing.T) {
	if err := bench.ResetPeakRSS(os.Getpid()); err != nil {
		t.Skipf("clear_refs not writable here: %v", err)
	}
	u, err := bench.ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.PeakRSS <= 0 {
		t.Errorf("PeakRSS after reset %d, want > 0", u.PeakRSS)
	}
}

func TestComputeRatios(t *testing.T) {
	f := func(name string, rows []bench.Throughput, want map[string]float64) {
		t.Helper()
		r := bench.Report{Throughput: rows, Ratios: map[string]float64{"stale": 9}}
		r.ComputeRatios()
		if r.Ratios == nil {
			t.Errorf("%s: Ratios nil, want an empty map at least", name)
		}
		if len(r.Ratios) != len(want) {
			t.Errorf("%s: Ratios %v, want %v", name, r.Ratios, want)
			return
		}
		for k, w := range want {
			if g, ok := r.Ratios[k]; !ok || g != w {
				t.Errorf("%s: Ratios %v, want %v", name, r.Ratios, want)
				return
			}
		}
	}
	f("no rows", nil, map[string]float64{})
	f("vigil only", []bench.Throughput{{Name: "vigil", EventsPerSec: 100}}, map[string]float64{})
	f("others",
		[]bench.Throughput{
			{Name: "vigil", EventsPerSec: 300_000},
			{Name: "kafka-engine", EventsPerSec: 100_000},
			{Name: "pipe", EventsPerSec: 150_000},
		},
		map[string]float64{"kafka-engine": 3, "pipe": 2})
	f("skipped and zero rates get none",
		[]bench.Throughput{
			{Name: "vigil", EventsPerSec: 300_000},
			{Name: "kafka-engine", EventsPerSec: 0},
			{Name: "pipe", Skipped: "kcat not found", EventsPerSec: 150_000},
			{Name: "other", EventsPerSec: 600_000},
		},
		map[string]float64{"other": 0.5})
	f("vigil at zero: no ratios",
		[]bench.Throughput{
			{Name: "vigil", EventsPerSec: 0},
			{Name: "kafka-engine", EventsPerSec: 100_000},
		},
		map[string]float64{})
	f("the first row is the reference",
		[]bench.Throughput{
			{Name: "pipe", EventsPerSec: 50_000},
			{Name: "vigil", EventsPerSec: 200_000},
		},
		map[string]float64{"vigil": 0.25})
}

func TestFinish(t *testing.T) {
	f := func(name string, in bench.Throughput, client bench.Usage, wantCPUPerMillion time.Duration) {
		t.Helper()
		got := in
		got.Finish(client)
		want := in
		want.ClientCPU, want.PeakRSS, want.CPUPerMillion = client.CPU, client.PeakRSS, wantCPUPerMillion
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Finish(%+v):\n got %+v\nwant %+v", name, client, got, want)
		}
	}
	f("2M events",
		bench.Throughput{Name: "vigil", Events: 2_000_000, ServerCPU: 5 * time.Second, ServerPeakRSS: 900 << 20},
		bench.Usage{CPU: 3 * time.Second, PeakRSS: 120 << 20},
		4*time.Second)
	f("no client process (kafka engine)",
		bench.Throughput{Name: "kafka-engine", Events: 500_000, ServerCPU: 2 * time.Second},
		bench.Usage{},
		4*time.Second)
	f("no server figures",
		bench.Throughput{Name: "pipe", Events: 250_000},
		bench.Usage{CPU: time.Second, PeakRSS: 8 << 20},
		4*time.Second)
	f("rounds down to the nanosecond",
		bench.Throughput{Name: "vigil", Events: 3},
		bench.Usage{CPU: time.Nanosecond},
		333_333)
	f("no events: no CPU per million",
		bench.Throughput{Name: "vigil", ServerCPU: time.Second},
		bench.Usage{CPU: time.Second, PeakRSS: 1 << 20},
		0)
}

// report is a fixed report with every part the table shows.
func report() bench.Report {
	r := bench.Report{
		Machine:    "linux/amd64, 2 CPUs (Test CPU @ 2.00GHz), ClickHouse 18.16.1",
		Events:     2_000_000,
		Partitions: 4,
		Runs:       3,
		EventBytes: 312.4,
		Throughput: []bench.Throughput{
			{
				Name:          "vigil",
				Events:        2_000_000,
				Wall:          8*time.Second + 123*time.Millisecond,
				EventsPerSec:  246_214.4,
				Runs:          []float64{251_002.5, 246_214.4, 239_871},
				ClientCPU:     6 * time.Second,
				ServerCPU:     4 * time.Second,
				CPUPerMillion: 5 * time.Second,
				PeakRSS:       150 << 20,
				ServerPeakRSS: 1200 << 20,
				Notes:         "validation, stream detectors, commits after each insert",
			},
			{
				Name:          "kafka-engine",
				Events:        1_999_000,
				Lost:          1_000,
				Wall:          20*time.Second + 4*time.Millisecond,
				EventsPerSec:  99_930.0,
				ServerCPU:     14 * time.Second,
				CPUPerMillion: 7 * time.Second,
				ServerPeakRSS: 1800 << 20,
				Notes:         "materialized views into the same tables",
			},
			{
				Name:    "pipe",
				Skipped: "kcat not found",
				Notes:   "not printed: skipped",
			},
		},
		Latency: &bench.Latency{
			Thefts:     300,
			Background: 20_000,
			P50:        42 * time.Millisecond,
			P99:        87*time.Millisecond + 340*time.Microsecond,
			Max:        120 * time.Millisecond,
		},
		Memory: &bench.Memory{Families: 1_000_000, BytesPerFamily: 212.37},
	}
	r.ComputeRatios()
	return r
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := report().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "report.golden"), b.Bytes())
}

func TestWriteJSONRoundTrip(t *testing.T) {
	f := func(name string, r bench.Report, absent ...string) {
		t.Helper()
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got bench.Report
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b.Bytes())
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: round trip:\n got %+v\nwant %+v\nJSON:\n%s", name, got, r, b.Bytes())
		}
		for _, k := range absent {
			if strings.Contains(b.String(), `"`+k+`"`) {
				t.Errorf("%s: JSON has %q:\n%s", name, k, b.Bytes())
			}
		}
	}
	f("full", report())
	small := bench.Report{Machine: "m", Events: 10, Partitions: 1, Throughput: []bench.Throughput{{Name: "vigil", Events: 10, Wall: time.Second, EventsPerSec: 10}}}
	small.ComputeRatios()
	f("no latency or memory", small, "latency", "memory", "skipped", "lost", "notes")
}

func TestMedian(t *testing.T) {
	run := func(rate float64) bench.Throughput { return bench.Throughput{Name: "vigil", EventsPerSec: rate} }
	f := func(name string, runs []bench.Throughput, want float64, wantRuns []float64) {
		t.Helper()
		got := bench.Median(runs)
		if got.EventsPerSec != want || !reflect.DeepEqual(got.Runs, wantRuns) {
			t.Errorf("%s: Median = %v with runs %v, want %v with runs %v", name, got.EventsPerSec, got.Runs, want, wantRuns)
		}
	}
	f("none", nil, 0, nil)
	f("one", []bench.Throughput{run(5)}, 5, nil)
	f("odd", []bench.Throughput{run(9), run(3), run(5)}, 5, []float64{9, 3, 5})
	f("even takes the lower middle", []bench.Throughput{run(9), run(3), run(5), run(7)}, 5, []float64{9, 3, 5, 7})
	skipped := bench.Median([]bench.Throughput{{Name: "pipe", Skipped: "kcat is not installed"}})
	if skipped.Skipped == "" || skipped.Runs != nil {
		t.Errorf("skipped: Median = %+v", skipped)
	}
}
