package detect

import (
	"time"

	"github.com/cespare/xxhash/v2"
)

// stamp is a time in the state: milliseconds since the table's epoch in
// the low 31 bits (about 24 days; the table moves its epoch forward before
// that runs out, and older stamps clamp to 1, "long ago"). 0 means never.
type stamp uint32

// ringSize is how many exchanged refresh tokens a family remembers.
const ringSize = 3

// numRealert is how many detectors keep a realert stamp in family.raised.
const numRealert = 2

// family is everything the stream detectors keep about one refresh-token
// family (one session): 88 bytes with no pointers, so a million of them
// cost the garbage collector nothing to scan. Each detector owns the
// fields it documents.
type family struct {
	key uint64 // familyKey, never 0 for a live family

	// token_reuse: the newest exchanged parent tokens (hashed), newest
	// first, when each was first exchanged, and the client of the newest
	// exchange.
	tokens     [ringSize]uint64
	exchanged  [ringSize]stamp
	exchClient uint32

	lastSeen uint32 // unix seconds of the newest event, for expiry

	// session_hijack: the client seen last and when.
	client   client
	clientAt stamp

	// use_after_revocation: the first revocation's stamp, with raisedBit
	// once its violation was raised.
	revoked stamp

	// raised is when token_reuse and session_hijack last raised here.
	raised [numRealert]stamp
}

// raisedBit marks family.revoked once its violation was raised.
const raisedBit stamp = 1 << 31

// table holds the families of one partition: an open-addressing index
// (linear probing, 8 bytes a slot) into a slab of families kept in
// fixed-size chunks, so growing never copies the families. A slot holds
// the slab index + 1 in its low half and the key's high half in its high
// half, so a probe reads a family only when the key very likely matches.
type table struct {
	slots  []uint64 // 0: empty
	mask   uint64
	chunks [][]family
	next   uint32   // slab entries handed out so far
	free   []uint32 // slab entries to reuse
	n      int      // live families

	epoch     int64 // unix milliseconds of stamp 0
	high      stamp // newest stamp seen
	highSec   uint32
	ttlSec    uint32
	nextSweep uint32 // unix seconds
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

// Epoch handling: a new table starts its epoch a week before its first
// event (older events clamp to stamp 1); past rebaseAt the epoch moves
// forward so that the newest stamp is keepAfterRebase again.
const (
	epochLead       = int64(7 * 24 * time.Hour / time.Millisecond)
	rebaseAt        = 1<<31 - 1<<28
	keepAfterRebase = 1 << 30
)

func newTable(ttl time.Duration) *table {
	t := &table{ttlSec: uint32(ttl / time.Second)}
	t.slots = make([]uint64, 1024)
	t.mask = uint64(len(t.slots) - 1)
	return t
}

// familyKey hashes the tenant and family id; never 0.
func familyKey(tenant, fam string) uint64 {
	if tenant == "" {
		return xxhash.Sum64String(fam) | 1
	}
	d := xxhash.New()
	_, _ = d.WriteString(tenant)
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(fam)
	return d.Sum64() | 1
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
	if sec := uint32(max(at.Unix(), 0)); sec > t.highSec {
		t.highSec = sec
	}
	return s
}

// timeOf converts a stamp back to a time (millisecond precision).
func (t *table) timeOf(s stamp) time.Time {
	return time.UnixMilli(t.epoch + int64(s&^raisedBit)).UTC()
}

// rebase moves the epoch forward by shift ms; older stamps clamp to 1.
func (t *table) rebase(shift int64) {
	t.epoch += shift
	mv := func(s *stamp) {
		if v := *s &^ raisedBit; v != 0 {
			*s = stamp(max(int64(v)-shift, 1)) | *s&raisedBit
		}
	}
	t.each(func(f *family) {
		for j := range f.exchanged {
			mv(&f.exchanged[j])
		}
		mv(&f.clientAt)
		mv(&f.revoked)
		for j := range f.raised {
			mv(&f.raised[j])
		}
	})
	t.high = stamp(max(int64(t.high)-shift, 1))
}

// at returns slab entry i.
func (t *table) at(i uint32) *family { return &t.chunks[i>>chunkBits][i&(chunkSize-1)] }

// index returns the slab index of an occupied slot.
func (t *table) index(slot uint64) uint32 { return uint32(t.slots[slot]) - 1 }

// slotValue packs slab index i of key into a slot.
func slotValue(key uint64, i uint32) uint64 { return key&^(1<<32-1) | uint64(i+1) }

// each calls fn for every live family.
func (t *table) each(fn func(*family)) {
	for _, s := range t.slots {
		if s != 0 {
			fn(t.at(uint32(s) - 1))
		}
	}
}

// find returns the slot holding key, or the empty slot where it would go.
func (t *table) find(key uint64) (slot uint64, found bool) {
	tag := key &^ (1<<32 - 1)
	for i := key & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return i, false
		}
		if s&^(1<<32-1) == tag && t.at(uint32(s)-1).key == key {
			return i, true
		}
	}
}

// get returns the family for key, creating it; the pointer is valid until
// the next sweep.
func (t *table) get(key uint64) *family {
	slot, ok := t.find(key)
	if ok {
		return t.at(t.index(slot))
	}
	if uint64(t.n+1) > uint64(len(t.slots))*3/4 {
		t.grow()
		slot, _ = t.find(key)
	}
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.next>>chunkBits == uint32(len(t.chunks)) {
			t.chunks = append(t.chunks, make([]family, chunkSize))
		}
		i = t.next
		t.next++
	}
	t.slots[slot] = slotValue(key, i)
	t.n++
	f := t.at(i)
	f.key = key
	return f
}

// find1 returns the family for key, or nil.
func (t *table) find1(key uint64) *family {
	if slot, ok := t.find(key); ok {
		return t.at(t.index(slot))
	}
	return nil
}

// expired reports whether f has been idle for longer than the TTL, as of
// the newest event seen.
func (t *table) expired(f *family) bool {
	return f.lastSeen != 0 && int64(f.lastSeen)+int64(t.ttlSec) < int64(t.highSec)
}

// grow doubles the index and reinserts every family.
func (t *table) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	t.mask = uint64(len(t.slots) - 1)
	for _, s := range old {
		if s != 0 {
			slot, _ := t.find(t.at(uint32(s) - 1).key)
			t.slots[slot] = s
		}
	}
}

// remove deletes the family in slot, shifting the entries after it back
// so that linear probing needs no tombstones.
func (t *table) remove(slot uint64) {
	i := t.index(slot)
	*t.at(i) = family{}
	t.free = append(t.free, i)
	t.n--
	hole := slot
	for j := (slot + 1) & t.mask; t.slots[j] != 0; j = (j + 1) & t.mask {
		home := t.at(t.index(j)).key & t.mask
		// The entry at j may move to the hole unless its home lies
		// cyclically in (hole, j].
		if (j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j) {
			t.slots[hole] = t.slots[j]
			hole = j
		}
	}
	t.slots[hole] = 0
}

// maybeSweep forgets families idle for longer than the TTL, at most once
// per ttl/16 (at least a minute) of event time; it returns how many it
// forgot.
func (t *table) maybeSweep() int {
	if t.highSec < t.nextSweep {
		return 0
	}
	t.nextSweep = t.highSec + max(t.ttlSec/16, 60)
	if t.highSec <= t.ttlSec {
		return 0
	}
	cutoff := t.highSec - t.ttlSec
	n := 0
	for slot := uint64(0); slot < uint64(len(t.slots)); {
		s := t.slots[slot]
		if s != 0 && t.at(uint32(s)-1).lastSeen < cutoff { // as expired() judges
			t.remove(slot) // the slot now holds a shifted entry, or is empty: look again
			n++
			continue
		}
		slot++
	}
	return n
}

// len returns the number of families held.
func (t *table) len() int { return t.n }

// since returns b − a as a duration (negative when b is earlier).
func since(a, b stamp) time.Duration {
	return time.Duration(int64(b&^raisedBit)-int64(a&^raisedBit)) * time.Millisecond
}
