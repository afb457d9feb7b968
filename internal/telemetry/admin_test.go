package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	a := NewAdmin(AdminOptions{Listen: "127.0.0.1:0", Pprof: true}, reg, slog.New(slog.DiscardHandler))
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	base := "http://" + a.Addr()

	f := func(path string, wantCode int, wantBody string) {
		t.Helper()
		code, body := get(t, base+path)
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("GET %s: %d %q, want %d containing %q", path, code, body, wantCode, wantBody)
		}
	}
	f("/healthz", 200, "ok")
	f("/readyz", 503, "starting") // no checks registered yet
	var storeDown atomic.Bool
	storeDown.Store(true)
	a.AddCheck("schema", func() error { return nil })
	a.AddCheck("ingest", func() error {
		if storeDown.Load() {
			return errors.New("store unavailable: connection refused")
		}
		return nil
	})
	f("/readyz", 503, "ingest: store unavailable: connection refused")
	storeDown.Store(false)
	f("/readyz", 200, "ready")
	f("/metrics", 200, "vigil_test_total 3")
	f("/debug/pprof/", 200, "goroutine")

	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestAdminListenErrorNamesKey(t *testing.T) {
	a := NewAdmin(AdminOptions{Listen: "256.0.0.1:1"}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	err := a.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "admin.listen") {
		t.Fatalf("got %v, want an error naming admin.listen", err)
	}
}

// TestAdminHardening: the profiler is off unless enabled, and with a token
// /metrics and /debug/pprof/ want it while the probes stay open.
func TestAdminHardening(t *testing.T) {
	start := func(o AdminOptions) string {
		t.Helper()
		o.Listen = "127.0.0.1:0"
		a := NewAdmin(o, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
		return "http://" + a.Addr()
	}
	do := func(url, auth string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET %s: 401 without a Bearer challenge", url)
		}
		return resp.StatusCode
	}
	f := func(base, path, auth string, want int) {
		t.Helper()
		if got := do(base+path, auth); got != want {
			t.Errorf("GET %s with %q: %d, want %d", path, auth, got, want)
		}
	}
	plain := start(AdminOptions{})
	f(plain, "/debug/pprof/", "", http.StatusNotFound)
	f(plain, "/debug/pprof/cmdline", "", http.StatusNotFound)
	f(plain, "/metrics", "", http.StatusOK)

	profiled := start(AdminOptions{Pprof: true})
	f(profiled, "/debug/pprof/", "", http.StatusOK)

	const token = "s3cr3t-admin-token"
	guarded := start(AdminOptions{Pprof: true, Token: token})
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
		f(guarded, path, "", http.StatusUnauthorized)
		f(guarded, path, "Bearer wrong", http.StatusUnauthorized)
		f(guarded, path, "Bearer "+token+"x", http.StatusUnauthorized)
		f(guarded, path, "Basic "+token, http.StatusUnauthorized)
		f(guarded, path, "Bearer "+token, http.StatusOK)
	}
	f(guarded, "/healthz", "", http.StatusOK)
	f(guarded, "/readyz", "", http.StatusServiceUnavailable) // open, and not ready: no checks
}
