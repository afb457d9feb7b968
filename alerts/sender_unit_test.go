package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/testenv"
)

// recorder is an Alertmanager stand-in for the sender's mechanics (batching,
// pacing, resolves); the real Alertmanager is in sender_test.go.
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts []recorded
	hang  bool // hold every request until the client gives up
	done  int  // requests answered
}

type recorded struct {
	at     time.Time
	alerts []alerts.Alert
}

func newRecorder(t *testing.T, hang bool) *recorder {
	r := &recorder{hang: hang}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var as []alerts.Alert
		if err := json.NewDecoder(req.Body).Decode(&as); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.posts = append(r.posts, recorded{at: time.Now(), alerts: as})
		r.mu.Unlock()
		if r.hang {
			<-req.Context().Done()
		}
		r.mu.Lock()
		r.done++
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) snapshot() ([]recorded, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.posts...), r.done
}

func recorderConfig(rs ...*recorder) alerts.Config {
	c := alerts.DefaultConfig()
	c.AllowHTTP = true
	for _, r := range rs {
		c.Alertmanagers = append(c.Alertmanagers, r.srv.URL)
	}
	c.ResendInterval, c.Hold = time.Second, time.Minute
	return c
}

// TestSenderHangingAlertmanagerDelaysNoOther: while one Alertmanager holds
// every post until the client's timeout, the other gets the alert at once
// and its resends on time; Shutdown gives up on it at its deadline.
func TestSenderHangingAlertmanagerDelaysNoOther(t *testing.T) {
	slow, fast := newRecorder(t, true), newRecorder(t, false)
	c := recorderConfig(slow, fast)
	c.Timeout = time.Minute
	s, err := alerts.NewSender(alerts.Options{Config: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = s.Handle(context.Background(), []detect.Anomaly{anomalyAt("a", "token_reuse", "replay_other_client", time.Now())})
	testenv.WaitFor(t, 30*time.Second, "three posts to the responsive Alertmanager", func() (bool, string) {
		posts, _ := fast.snapshot()
		return len(posts) >= 3, fmt.Sprint(len(posts), " posts")
	})
	if posts, done := slow.snapshot(); len(posts) != 1 || done != 0 {
		t.Errorf("hanging Alertmanager: %d posts, %d answered; want 1 still hanging", len(posts), done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a hanging Alertmanager: %v, want the deadline exceeded", err)
	}
}

// TestSenderKeepsPostingResolved: after its endsAt an alert is no longer
// firing but is still posted (with its past endsAt), so an Alertmanager
// that lost it in a restart still learns it resolved.
func TestSenderKeepsPostingResolved(t *testing.T) {
	r := newRecorder(t, false)
	c := recorderConfig(r)
	c.Hold = time.Second
	s := startSender(t, c, alerts.Options{})
	a := anomalyAt("short", "token_reuse", "replay_other_client", time.Now())
	_ = s.Handle(context.Background(), []detect.Anomaly{a})
	testenv.WaitFor(t, 30*time.Second, "a post of the alert after its endsAt", func() (bool, string) {
		posts, _ := r.snapshot()
		for _, p := range posts {
			if len(p.alerts) == 1 && p.alerts[0].EndsAt.Before(p.at) {
				return true, ""
			}
		}
		return false, fmt.Sprint(len(posts), " posts, none after endsAt")
	})
	if got := s.Active(); len(got) != 0 {
		t.Errorf("Active after endsAt: %+v, want none", got)
	}
}

// TestSenderBatches: many alerts go in posts of at most 64.
func TestSenderBatches(t *testing.T) {
	r := newRecorder(t, false)
	s := startSender(t, recorderConfig(r), alerts.Options{})
	var as []detect.Anomaly
	now := time.Now()
	for i := range 150 {
		as = append(as, anomalyAt(fmt.Sprint("b-", i), "token_reuse", "replay_other_client", now))
	}
	_ = s.Handle(context.Background(), as)
	testenv.WaitFor(t, 30*time.Second, "all 150 alerts posted", func() (bool, string) {
		posts, _ := r.snapshot()
		ids := map[string]bool{}
		for _, p := range posts {
			if len(p.alerts) > 64 {
				return false, fmt.Sprint("a post of ", len(p.alerts), " alerts")
			}
			for _, a := range p.alerts {
				ids[a.Labels["anomaly_id"]] = true
			}
		}
		return len(ids) == 150, fmt.Sprint(len(ids), " distinct alerts in ", len(posts), " posts")
	})
	posts, _ := r.snapshot()
	for _, p := range posts {
		if len(p.alerts) > 64 {
			t.Fatalf("a post of %d alerts, want at most 64", len(p.alerts))
		}
	}
}

// TestSenderLifecycle: Start twice or after Shutdown is an error; Shutdown
// is idempotent, also without Start.
func TestSenderLifecycle(t *testing.T) {
	r := newRecorder(t, false)
	s, err := alerts.NewSender(alerts.Options{Config: recorderConfig(r)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
	unstarted, err := alerts.NewSender(alerts.Options{Config: recorderConfig(r)})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstarted.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown without Start: %v", err)
	}
}
