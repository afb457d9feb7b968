package detect

import (
	"time"
)

// Watermark decides up to which event time the cluster's stored events
// are complete: the minimum over partitions of their newest stored event,
// less the allowed lateness. A partition whose newest event has not moved
// for IdleAfter (wall clock) is left out, so a quiet or abandoned
// partition does not stall every window forever; when every partition is
// idle (the traffic stopped, or ingest stalled) the slowest one bounds it,
// so no partition's events are passed over. It never goes back. A
// Watermark is not safe for concurrent use.
type Watermark struct {
	lateness, idleAfter time.Duration
	parts               map[int32]*watermarkPart
	value               time.Time
}

type watermarkPart struct {
	newest time.Time // newest stored event time
	seen   time.Time // wall clock when the partition was first seen
	moved  time.Time // wall clock when newest last advanced (seen until it does)
}

// NewWatermark returns a Watermark with no partitions.
func NewWatermark(lateness, idleAfter time.Duration) *Watermark {
	return &Watermark{lateness: lateness, idleAfter: idleAfter, parts: map[int32]*watermarkPart{}}
}

// Update records each partition's newest stored event time, as of the
// wall-clock time now, and returns the watermark (zero, false while no
// partition has any event). Partitions missing from newest keep what they
// had.
func (w *Watermark) Update(newest map[int32]time.Time, now time.Time) (time.Time, bool) {
	for p, t := range newest {
		st := w.parts[p]
		if st == nil {
			w.parts[p] = &watermarkPart{newest: t, seen: now, moved: now}
			continue
		}
		if t.After(st.newest) {
			st.newest, st.moved = t, now
		}
	}
	var low, oldest time.Time
	active := false
	for _, st := range w.parts {
		if st.moved.After(st.seen) && (oldest.IsZero() || st.newest.Before(oldest)) {
			oldest = st.newest
		}
		if now.Sub(st.moved) >= w.idleAfter {
			continue
		}
		if !active || st.newest.Before(low) {
			low = st.newest
		}
		active = true
	}
	var v time.Time
	switch {
	case active:
		v = low.Add(-w.lateness)
	case !oldest.IsZero():
		// Every partition idle (traffic stopped, or ingest stalled): hold
		// at the slowest one seen moving, never past events still to come.
		v = oldest.Add(-w.lateness)
	}
	if v.IsZero() && w.value.IsZero() {
		return time.Time{}, false // only partitions never seen moving, all idle: nothing known yet
	}
	if v.After(w.value) {
		w.value = v
	}
	return w.value, true
}

// Settled reports whether at least one partition has advanced since it
// was first seen and every other one has been watched for IdleAfter: only
// then does the watermark say which partitions are alive (a partition
// dead for hours counts as active until IdleAfter has passed, and a
// process started during a quiet spell knows nothing yet).
func (w *Watermark) Settled(now time.Time) bool {
	moved := false
	for _, st := range w.parts {
		if st.moved.After(st.seen) {
			moved = true
		} else if now.Sub(st.seen) < w.idleAfter {
			return false
		}
	}
	return moved
}

// Value returns the watermark as of the last Update.
func (w *Watermark) Value() time.Time { return w.value }
