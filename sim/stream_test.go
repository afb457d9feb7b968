package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// TestStreamIsDeterministicAndValid: the same seed gives the same bytes;
// valid messages decode; each invalid one is rejected with its stated reason,
// and every reason occurs.
func TestStreamIsDeterministicAndValid(t *testing.T) {
	a := NewStream(StreamConfig{Seed: 7, Users: 50, InvalidEvery: 10})
	b := NewStream(StreamConfig{Seed: 7, Users: 50, InvalidEvery: 10})
	dec := schemas.NewDecoder(schemas.DecoderConfig{Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }})
	seen := map[schemas.Reason]int{}
	types := map[schemas.Type]int{}
	var ev schemas.Event
	for i := range 5000 {
		ma, mb := a.Next(), b.Next()
		if !bytes.Equal(ma.Value, mb.Value) || !bytes.Equal(ma.Key, mb.Key) {
			t.Fatalf("message %d differs between two streams with the same seed", i)
		}
		err := dec.Decode(ma.Value, &ev)
		if ma.Valid {
			if err != nil {
				t.Fatalf("message %d should be valid: %v\n%s", i, err, ma.Value)
			}
			if ev.ID != ma.ID {
				t.Fatalf("message %d: id %q, want %q", i, ev.ID, ma.ID)
			}
			types[ev.Type]++
			continue
		}
		if got := schemas.ReasonOf(err); got != ma.Reason {
			t.Fatalf("message %d: rejected with %q (%v), want %q", i, got, err, ma.Reason)
		}
		seen[ma.Reason]++
	}
	for _, r := range InvalidReasons {
		if seen[r] == 0 {
			t.Errorf("reason %s never produced", r)
		}
	}
	for _, ty := range schemas.Types() {
		if types[ty] == 0 {
			t.Errorf("event type %s never produced", ty)
		}
	}
	if len(InvalidReasons) != len(schemas.Reasons()) {
		t.Errorf("InvalidReasons covers %d of %d reasons", len(InvalidReasons), len(schemas.Reasons()))
	}
}
