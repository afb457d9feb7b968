package detect

import (
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

func TestFamilySize(t *testing.T) {
	if n := unsafe.Sizeof(family{}); n != 88 {
		t.Errorf("family is %d bytes, want 88: the memory budget per family is 128 bytes with the index", n)
	}
}

// TestTableAgainstMap drives the open-addressing table and a Go map with the
// same random inserts and expiries (many colliding keys included) and
// checks they always agree.
func TestTableAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tb := newTable(time.Hour)
	model := map[uint64]uint32{} // key → lastSeen
	now := uint32(1_000_000)
	for step := range 30_000 {
		// Keys share low bits often, so probe chains cross and wrap.
		key := uint64(r.IntN(1500))<<40 | uint64(r.IntN(64)) | 1
		now += uint32(r.IntN(3))
		f := tb.get(key)
		if f.key != key {
			t.Fatalf("step %d: got family %x for key %x", step, f.key, key)
		}
		f.lastSeen = now
		model[key] = now
		tb.highSec = now
		if step%3000 == 0 {
			tb.nextSweep = 0
			tb.maybeSweep()
			for k, seen := range model {
				if seen < now-tb.ttlSec {
					delete(model, k)
				}
			}
			if tb.len() != len(model) {
				t.Fatalf("step %d: table holds %d families, model %d", step, tb.len(), len(model))
			}
			for k, seen := range model {
				slot, ok := tb.find(k)
				if !ok || tb.at(tb.index(slot)).lastSeen != seen {
					t.Fatalf("step %d: key %x lost or wrong after sweep", step, k)
				}
			}
		}
	}
	n := 0
	tb.each(func(*family) { n++ })
	if n != len(model) {
		t.Errorf("each visits %d families, model holds %d", n, len(model))
	}
}

// TestStampsSurviveRebase: after the epoch moves, recent stamps keep their
// times and old ones read as long ago.
func TestStampsSurviveRebase(t *testing.T) {
	tb := newTable(24 * time.Hour)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := tb.get(3)
	f.revoked = tb.stampOf(start) | raisedBit
	f.clientAt = tb.stampOf(start.Add(13 * 24 * time.Hour))
	late := start.Add(60 * 24 * time.Hour) // past rebaseAt: the epoch moves
	s := tb.stampOf(late)
	if !tb.timeOf(s).Equal(late) {
		t.Errorf("timeOf(stampOf(%s)) = %s", late, tb.timeOf(s))
	}
	if f.revoked != 1|raisedBit {
		t.Errorf("an old stamp should clamp to 1 and keep its flag, got %#x", f.revoked)
	}
	// Clamped stamps read as at least keepAfterRebase ago: longer than any
	// window a detector looks back over (at most a day).
	if d := since(f.clientAt, s); d < (keepAfterRebase-1)*time.Millisecond {
		t.Errorf("since(old, now) = %s, want at least %s", d, keepAfterRebase*time.Millisecond)
	}
}
