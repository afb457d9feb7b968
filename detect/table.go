package detect

import (
	"time"

	"github.com/cespare/xxhash/v2"
)

// stamp is a time in the state: milliseconds since the table's epoch, in
// 32 bits (about 49 days; the table moves its epoch forward before that
// runs out). 0 means "never".
type stamp uint32

// ringSize is how many exchanged refresh tokens a family remembers.
const ringSize = 3

// family is everything the stream detectors keep about one refresh-token
// family (one session). Each detector owns the fields it documents. It
// holds no pointers, so a million of them cost the garbage collector
// nothing to scan.
type family struct {
	lastSeen stamp // newest event of the family, for expiry

	// token_reuse: the newest exchanged parent tokens, newest first, when
	// each was first exchanged, and the client of the newest exchange.
	tokens     [ringSize]uint64
	exchanged  [ringSize]stamp
	exchClient uint32

	// session_hijack: the client seen last and when.
	client   client
	clientAt stamp

	// use_after_revocation: the first revocation, and whether its
	// violation was reported.
	revokedAt stamp
	uarRaised bool

	// raised is when each detector last raised an anomaly here (realert).
	raised [numDetectors]stamp
}

// table holds the families of one partition: an index from the hashed
// family key to a slot in a pointer-free slab.
type table struct {
	index map[uint64]uint32
	slab  []family
	free  []uint32

	epoch     int64 // unix milliseconds of stamp 0
	high      stamp // newest stamp seen
	ttl       int64 // ms
	nextSweep stamp
}

// Epoch handling: a new table starts its epoch a week before its first
// event (older events clamp to stamp 1); past rebaseAt the epoch moves
// forward so that the newest stamp is keepAfterRebase again.
const (
	epochLead       = int64(7 * 24 * time.Hour / time.Millisecond)
	rebaseAt        = 3 << 30
	keepAfterRebase = 1 << 30
)

func newTable(ttl time.Duration) *table {
	return &table{index: make(map[uint64]uint32), ttl: ttl.Milliseconds()}
}

// familyKey hashes the tenant and family id.
func familyKey(tenant, fam string) uint64 {
	if tenant == "" {
		return xxhash.Sum64String(fam)
	}
	d := xxhash.New()
	_, _ = d.WriteString(tenant)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(fam)
	return d.Sum64()
}

// stampOf converts an event time to a stamp, moving the epoch when needed.
func (t *table) stampOf(at time.Time) stamp {
	ms := at.UnixMilli()
	if t.epoch == 0 {
		t.epoch = ms - epochLead
	}
	d := ms - t.epoch
	if d > rebaseAt {
		t.rebase(d - keepAfterRebase)
		d = ms - t.epoch
	}
	s := stamp(max(d, 1))
	if s > t.high {
		t.high = s
	}
	return s
}

// timeOf converts a stamp back to a time (millisecond precision).
func (t *table) timeOf(s stamp) time.Time { return time.UnixMilli(t.epoch + int64(s)).UTC() }

// rebase moves the epoch forward by shift ms; older stamps clamp to 1.
func (t *table) rebase(shift int64) {
	t.epoch += shift
	mv := func(s *stamp) {
		if *s != 0 {
			*s = stamp(max(int64(*s)-shift, 1))
		}
	}
	for _, i := range t.index {
		f := &t.slab[i]
		mv(&f.lastSeen)
		for j := range f.exchanged {
			mv(&f.exchanged[j])
		}
		mv(&f.clientAt)
		mv(&f.revokedAt)
		for j := range f.raised {
			mv(&f.raised[j])
		}
	}
	t.high = stamp(max(int64(t.high)-shift, 1))
	t.nextSweep = stamp(max(int64(t.nextSweep)-shift, 0))
}

// get returns the family for key, creating it; the pointer is valid until
// the next call to get or sweep.
func (t *table) get(key uint64) *family {
	if i, ok := t.index[key]; ok {
		return &t.slab[i]
	}
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.slab = append(t.slab, family{})
		i = uint32(len(t.slab) - 1)
	}
	t.index[key] = i
	return &t.slab[i]
}

// lookup returns the family for key, or nil.
func (t *table) lookup(key uint64) *family {
	if i, ok := t.index[key]; ok {
		return &t.slab[i]
	}
	return nil
}

// maybeSweep forgets families idle for longer than the TTL, at most once
// per sweepEvery of event time; it returns how many it forgot.
func (t *table) maybeSweep() int {
	if t.high < t.nextSweep {
		return 0
	}
	every := max(t.ttl/16, int64(time.Minute/time.Millisecond))
	t.nextSweep = t.high + stamp(min(every, keepAfterRebase))
	cutoff := int64(t.high) - t.ttl
	if cutoff <= 0 {
		return 0
	}
	n := 0
	for k, i := range t.index {
		if int64(t.slab[i].lastSeen) < cutoff {
			delete(t.index, k)
			t.slab[i] = family{}
			t.free = append(t.free, i)
			n++
		}
	}
	return n
}

// len returns the number of families held.
func (t *table) len() int { return len(t.index) }

// since returns b − a as a duration (negative when b is earlier).
func since(a, b stamp) time.Duration {
	return time.Duration(int64(b)-int64(a)) * time.Millisecond
}
