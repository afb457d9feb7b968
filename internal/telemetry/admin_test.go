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
	a := NewAdmin("127.0.0.1:0", reg, slog.New(slog.DiscardHandler))
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
	a := NewAdmin("256.0.0.1:1", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	err := a.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "admin.listen") {
		t.Fatalf("got %v, want an error naming admin.listen", err)
	}
}
