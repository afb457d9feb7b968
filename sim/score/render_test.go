package score

import (
	"testing"
	"time"
)

func TestHuman(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
	f(0, "0ms")
	f(400*time.Microsecond, "0ms")
	f(180*time.Millisecond, "180ms")
	f(999*time.Millisecond, "999ms")
	f(999600*time.Microsecond, "1.0s")
	f(2400*time.Millisecond, "2.4s")
	f(12450*time.Millisecond, "12.5s")
	f(59960*time.Millisecond, "1m00s")
	f(4*time.Minute+5*time.Second, "4m05s")
	f(2*time.Hour+10*time.Minute+20*time.Second, "2h10m")
}
