package detect

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func TestMedianMAD(t *testing.T) {
	f := func(xs []float64, wantMed, wantMAD float64) {
		t.Helper()
		med, mad := MedianMAD(xs)
		if med != wantMed || mad != wantMAD {
			t.Errorf("MedianMAD(%v) = %g, %g; want %g, %g", xs, med, mad, wantMed, wantMAD)
		}
	}
	f(nil, 0, 0)
	f([]float64{7}, 7, 0)
	f([]float64{1, 2, 3, 4}, 2.5, 1)
	f([]float64{3, 1, 2}, 2, 1)
	// One huge outlier (last week's incident) moves neither.
	f([]float64{10, 11, 9, 10, 12, 10, 5000}, 10, 1)
}

func TestBaselineJudge(t *testing.T) {
	c := BaselineConfig{MinSamples: 5, MADs: 6, MinRatio: 1.5}
	tests := []struct {
		name    string
		samples []float64
		floor   float64
		want    Baseline
	}{
		{"no history: the floor alone", nil, 20, Baseline{Threshold: 20, Floor: 20, Missing: true}},
		{"too little history: the floor alone", []float64{100, 100, 100, 100}, 20,
			Baseline{Samples: 4, Threshold: 20, Floor: 20, Missing: true}},
		{"a quiet tenant: the floor wins", []float64{0, 1, 0, 2, 1, 0}, 20,
			Baseline{Samples: 6, Median: 0.5, MAD: 0.5, Threshold: 20, Floor: 20}},
		{"a busy tenant: median + 6 × 1.4826 × MAD", []float64{100, 110, 90, 100, 120, 80, 100}, 20,
			Baseline{Samples: 7, Median: 100, MAD: 10, Threshold: 100 + 6*1.4826*10, Floor: 20}},
		{"a flat series (MAD 0): min_ratio × median", []float64{50, 50, 50, 50, 50}, 20,
			Baseline{Samples: 5, Median: 50, Threshold: 75, Floor: 20}},
		{"a busy tenant, a bigger min_ratio: min_ratio × median", []float64{100, 110, 90, 100, 120, 80, 100}, 20,
			Baseline{Samples: 7, Median: 100, MAD: 10, Threshold: 300, Floor: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c
			if tt.want.Threshold == 300 {
				c.MinRatio = 3
			}
			got := c.Judge(tt.samples, tt.floor)
			if math.Abs(got.Threshold-tt.want.Threshold) < 1e-9 {
				got.Threshold = tt.want.Threshold
			}
			if got != tt.want {
				t.Errorf("Judge = %+v, want %+v", got, tt.want)
			}
			if got.Exceeded(got.Threshold-0.5) || !got.Exceeded(got.Threshold) {
				t.Errorf("Exceeded does not switch at the threshold %g", got.Threshold)
			}
		})
	}
}

// TestBucketEnds checks which past buckets a window's baseline rests on:
// the recent hour before the window starts and the same hour on earlier
// days, never a bucket from before the first stored event (missing
// history is not a quiet period).
func TestBucketEnds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window.Baseline.Recent = 5 * time.Minute
	cfg.Window.Baseline.Days = 2
	w := &Windows{cfg: cfg, step: 5}
	r := &windowRule{window: time.Minute}
	day := int64(86400)
	end := int64(1_000_000_000) + 3*day + 125 // not on a minute boundary
	anchor := (end - 60) - (end-60)%60        // 60 s window; the bucket before it ends on the minute at or before its start
	f := func(first int64, want int) []int64 {
		t.Helper()
		w.first = first
		got := w.bucketEnds(r, end)
		if len(got) != want {
			t.Fatalf("first=%d: %d buckets %v, want %d", first, len(got), got, want)
		}
		for _, b := range got {
			if b%60 != 0 || b > end-60 {
				t.Errorf("bucket end %d: not on the minute, or overlapping the window [%d, %d)", b, end-60, end)
			}
			if b-60 < first {
				t.Errorf("bucket end %d starts before the first event %d", b, first)
			}
		}
		return got
	}
	got := f(1, 5+2*60) // 5 recent, one hour (±30 m) on each of 2 days
	if got[0] != anchor {
		t.Errorf("newest bucket ends at %d, want %d", got[0], anchor)
	}
	f(end-day-10*60, 5+37) // history starts 10 min before yesterday's window: the buckets of yesterday's hour from then on
	f(end-3*60, 1)         // three minutes of history before the window's end: one complete bucket before it
	f(end, 0)              // nothing stored before the window
	w.first = 0            // nothing stored at all
	if got := w.bucketEnds(r, end); len(got) != 0 {
		t.Errorf("no stored events: %d buckets", len(got))
	}
}

func TestWatermark(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // wall clock
	e0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // event time
	at := func(s int) time.Time { return e0.Add(time.Duration(s) * time.Second) }
	wall := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := NewWatermark(5*time.Second, 30*time.Second)
	check := func(now int, parts map[int32]time.Time, want time.Time, wantOK bool) {
		t.Helper()
		got, ok := w.Update(parts, wall(now))
		if ok != wantOK || !got.Equal(want) {
			t.Errorf("at wall+%ds: watermark %s (%v), want %s (%v)", now, got.Sub(e0), ok, want.Sub(e0), wantOK)
		}
	}
	check(0, nil, time.Time{}, false) // no partition has events yet
	check(1, map[int32]time.Time{0: at(100), 1: at(100), 2: at(100)}, at(95), true)
	// Partition 2 lags (a slow consumer) but advances: it holds the windows open.
	check(2, map[int32]time.Time{0: at(200), 1: at(200), 2: at(120)}, at(115), true)
	check(20, map[int32]time.Time{0: at(300), 1: at(300), 2: at(150)}, at(145), true)
	// Partition 1 stops reporting (no new rows): it keeps its last time.
	check(25, map[int32]time.Time{0: at(310), 2: at(160)}, at(155), true)
	// Partition 2 stalls at wall+25s; until 30 s of wall clock later it
	// still holds the others back (partition 1, idle since wall+20s, no
	// longer does), then it no longer does.
	check(54, map[int32]time.Time{0: at(400), 2: at(160)}, at(155), true)
	check(55, map[int32]time.Time{0: at(420), 2: at(160)}, at(415), true)
	// It never goes back, even when a stalled partition wakes up behind it.
	check(56, map[int32]time.Time{0: at(425), 2: at(170)}, at(415), true)
	// Every partition idle (the traffic stopped, or ingest stalled): the
	// slowest partition bounds it, and it does not go back.
	check(200, nil, at(415), true)
	w2 := NewWatermark(5*time.Second, 30*time.Second)
	w2.Update(map[int32]time.Time{0: at(100), 1: at(90)}, wall(0))
	if got, _ := w2.Update(nil, wall(100)); !got.Equal(at(85)) {
		t.Errorf("all idle: %s, want the slowest partition less lateness (85s)", got.Sub(e0))
	}
	if !w.Value().Equal(at(415)) {
		t.Errorf("Value = %s", w.Value().Sub(e0))
	}
}

// TestWatermarkSettled checks when a runner taking over may trust the
// watermark: once every partition has moved, or been watched for
// idle_after (a partition dead for hours must not drag it back).
func TestWatermarkSettled(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := NewWatermark(5*time.Second, 30*time.Second)
	if w.Settled(t0) {
		t.Error("settled with no partition seen")
	}
	w.Update(map[int32]time.Time{0: e0.Add(time.Hour), 1: e0}, t0) // partition 1: hours behind
	if w.Settled(t0.Add(time.Second)) {
		t.Error("settled before any partition moved")
	}
	w.Update(map[int32]time.Time{0: e0.Add(time.Hour + time.Second)}, t0.Add(2*time.Second))
	if w.Settled(t0.Add(2 * time.Second)) {
		t.Error("settled while partition 1 has neither moved nor been watched for idle_after")
	}
	if !w.Settled(t0.Add(30 * time.Second)) {
		t.Error("not settled after idle_after")
	}
	if got, _ := w.Update(nil, t0.Add(30*time.Second)); !got.Equal(e0.Add(time.Hour - 4*time.Second)) {
		t.Errorf("watermark %s: the dead partition still holds it", got.Sub(e0))
	}
	w2 := NewWatermark(5*time.Second, 30*time.Second)
	w2.Update(map[int32]time.Time{0: e0, 1: e0}, t0)
	w2.Update(map[int32]time.Time{0: e0.Add(time.Second), 1: e0.Add(time.Second)}, t0.Add(time.Second))
	if !w2.Settled(t0.Add(time.Second)) {
		t.Error("not settled although every partition moved")
	}
}

// TestBucketEndsOnTheGrid checks that the earlier days' buckets lie on the
// rule's bucket grid whatever the window length (a 7-minute window does
// not divide the ±30 minutes around the hour).
func TestBucketEndsOnTheGrid(t *testing.T) {
	cfg := DefaultConfig()
	w := &Windows{cfg: cfg, step: 5, first: 1}
	for _, L := range []time.Duration{time.Minute, 7 * time.Minute, 20 * time.Minute, time.Hour} {
		r := &windowRule{window: L}
		end := int64(2_000_000_005)
		got := w.bucketEnds(r, end)
		if len(got) == 0 {
			t.Fatalf("%s: no buckets", L)
		}
		for _, b := range got {
			if b%int64(L/time.Second) != 0 {
				t.Errorf("%s: bucket end %d is not on the grid", L, b)
			}
		}
	}
}

func TestBurstStart(t *testing.T) {
	s := func(secs ...int64) []string {
		out := make([]string, len(secs))
		for i, x := range secs {
			out[i] = strconv.FormatInt(x*1e9, 10)
		}
		return out
	}
	f := func(in []string, want int64) {
		t.Helper()
		if got := burstStart(in); got != want*1e9 {
			t.Errorf("burstStart(%v) = %d s, want %d s", in, got/1e9, want)
		}
	}
	f(nil, 0)
	f(s(100), 100)
	f(s(130, 120, 101, 100), 100)
	f(s(130, 120, 101, 100, 40), 100) // a typo a minute before is not the attack
	f(s(130, 100, 70), 70)            // pauses of exactly 30 s stay one burst
}
