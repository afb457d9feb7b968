package revoke_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

func TestClassify(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		status     int
		h          http.Header
		want       revoke.Outcome
		retryAfter time.Duration
	}{
		{200, nil, revoke.Done, 0},
		{201, nil, revoke.Done, 0},
		{204, nil, revoke.Done, 0},
		{404, nil, revoke.Done, 0},
		{409, nil, revoke.Done, 0},
		{408, nil, revoke.Retry, 0},
		{429, h("Retry-After", "3"), revoke.Retry, 3 * time.Second},
		{503, h("Retry-After", "1"), revoke.Retry, time.Second},
		{500, nil, revoke.Retry, 0},
		{302, nil, revoke.Permanent, 0},
		{400, nil, revoke.Permanent, 0},
		{401, nil, revoke.Permanent, 0},
		{403, nil, revoke.Permanent, 0},
		{422, nil, revoke.Permanent, 0},
	}
	for _, tt := range tests {
		if tt.h == nil {
			tt.h = http.Header{}
		}
		r := revoke.Classify(tt.status, tt.h, []byte(`{"error":"x"}`))
		if r.Outcome != tt.want || r.RetryAfter != tt.retryAfter || r.Status != tt.status {
			t.Errorf("Classify(%d) = %+v, want %s retry after %s", tt.status, r, tt.want, tt.retryAfter)
		}
		if (r.Err != nil) != (tt.want != revoke.Done) {
			t.Errorf("Classify(%d) error %v", tt.status, r.Err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f := func(v string, want time.Duration) {
		t.Helper()
		if got := revoke.ParseRetryAfter(v, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
	f("", 0)
	f("2", 2*time.Second)
	f(" 10 ", 10*time.Second)
	f("-5", 0)
	f("99999", time.Hour)
	f(now.Add(90*time.Second).Format(http.TimeFormat), 90*time.Second)
	f(now.Add(-time.Minute).Format(http.TimeFormat), 0)
	f("soon", 0)
}
