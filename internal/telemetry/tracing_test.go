package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestTracerProviderExportsOTLPHTTP: spans reach an OTLP/HTTP endpoint
// (POST /v1/traces, protobuf) when the provider shuts down. No collector
// package exists here, so the endpoint is a recorder following the OTLP/HTTP
// spec's request shape.
func TestTracerProviderExportsOTLPHTTP(t *testing.T) {
	var posts, bytes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			b, _ := io.ReadAll(r.Body)
			posts.Add(1)
			bytes.Add(int64(len(b)))
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	tp, shutdown, err := NewTracerProvider(context.Background(), srv.URL, 1, "vigil-test", "dev")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "session-events process")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() != 1 || bytes.Load() == 0 {
		t.Errorf("collector got %d POSTs (%d bytes), want 1 non-empty", posts.Load(), bytes.Load())
	}
}

func TestTracerProviderDisabled(t *testing.T) {
	tp, shutdown, err := NewTracerProvider(context.Background(), "", 1, "vigil", "dev")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "x")
	if span.SpanContext().IsValid() {
		t.Error("disabled tracing produced a real span")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
