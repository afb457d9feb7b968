// Package telemetry serves vigil's admin HTTP endpoints (/metrics, /healthz,
// /readyz, and /debug/pprof/ when enabled) and sets up logging.
package telemetry

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition: nil when satisfied, else why not.
type Check struct {
	Name  string
	Check func() error
}

// Admin is the admin HTTP server. Start it before the pipeline so probes
// answer during startup; Shutdown is idempotent.
type Admin struct {
	listen string
	srv    *http.Server
	ln     net.Listener
	mu     sync.Mutex
	checks []Check
	once   sync.Once
	errc   chan error
}

// AdminOptions configures the admin server.
type AdminOptions struct {
	// Listen is the host:port to serve on; "" disables the server.
	Listen string
	// Pprof serves Go's profiler under /debug/pprof/ (off by default: a
	// profile costs CPU and shows the program's internals).
	Pprof bool
	// Token, when set, is the bearer token /metrics and /debug/pprof/
	// require (Authorization: Bearer TOKEN); /healthz and /readyz stay
	// open for the orchestrator's probes and say nothing secret.
	Token string
}

// NewAdmin builds the server o describes, exposing gatherer's metrics.
func NewAdmin(o AdminOptions, gatherer prometheus.Gatherer, log *slog.Logger) *Admin {
	a := &Admin{listen: o.Listen, errc: make(chan error, 1)}
	guard := func(h http.Handler) http.Handler { return h }
	if o.Token != "" {
		guard = func(h http.Handler) http.Handler { return bearer(o.Token, h) }
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", guard(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)})))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", a.readyz)
	if o.Pprof {
		mux.Handle("/debug/pprof/", guard(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", guard(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", guard(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", guard(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", guard(http.HandlerFunc(pprof.Trace)))
	}
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return a
}

// bearer serves h only to requests carrying token as their bearer token,
// compared in constant time; others get 401 with a WWW-Authenticate
// challenge.
func bearer(token string, h http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil admin"`)
			http.Error(w, "unauthorized: this endpoint needs the admin bearer token (admin.token_file)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// AddCheck adds a readiness condition; /readyz is 200 only when all pass.
func (a *Admin) AddCheck(name string, fn func() error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, Check{name, fn})
}

// Ready returns nil when every check passes, else the failures joined.
func (a *Admin) Ready() error {
	a.mu.Lock()
	checks := append([]Check(nil), a.checks...)
	a.mu.Unlock()
	if len(checks) == 0 {
		return errors.New("starting")
	}
	var errs []error
	for _, c := range checks {
		if err := c.Check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Admin) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := a.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready:\n%s\n", strings.ReplaceAll(err.Error(), "\n", "\n"))
		return
	}
	io.WriteString(w, "ready\n")
}

// Start listens and serves in the background; it returns once listening.
func (a *Admin) Start(ctx context.Context) error {
	if a.listen == "" {
		return nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", a.listen)
	if err != nil {
		return fmt.Errorf("admin: listen on %s (admin.listen): %w", a.listen, err)
	}
	a.ln = ln
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.errc <- err
		}
	}()
	return nil
}

// Addr returns the listening address, or "" when not started.
func (a *Admin) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Shutdown stops serving, waiting for in-flight requests until ctx ends.
func (a *Admin) Shutdown(ctx context.Context) error {
	var err error
	a.once.Do(func() {
		if a.ln != nil {
			err = a.srv.Shutdown(ctx)
		}
	})
	return err
}

// NewLogger returns a slog logger writing level and format ("text" or "json") to w.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
