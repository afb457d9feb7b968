package sessionapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/sim/truth"
)

// Path is the only route the service answers.
const Path = "/revocations"

// MaxBodyBytes is the largest request body accepted; larger ones get 413.
const MaxBodyBytes = 64 << 10

// maxKeyLen bounds the Idempotency-Key header.
const maxKeyLen = 256

// Response statuses, the "status" field of a response body.
const (
	StatusRevoked        = truth.OutcomeRevoked
	StatusAlreadyRevoked = truth.OutcomeAlreadyRevoked
	StatusNotFound       = truth.OutcomeNotFound
)

// Headers the service reads or writes besides Authorization and Retry-After.
const (
	HeaderIdempotencyKey   = "Idempotency-Key"
	HeaderSignature        = "X-Vigil-Signature"
	HeaderIdempotentReplay = "Idempotent-Replayed"
)

const (
	signaturePrefix   = "sha256="
	contentTypeJSON   = "application/json"
	readHeaderTimeout = 10 * time.Second
)

// Response is the JSON body of a successful (201, 404 or 409) answer.
type Response struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Enforced bool   `json:"enforced"`
}

// Stats counts what the service has seen since New; see Server.Stats.
type Stats struct {
	Received       uint64 `json:"received"`        // POST /revocations requests
	Revoked        uint64 `json:"revoked"`         // first-time keys answered 201
	AlreadyRevoked uint64 `json:"already_revoked"` // first-time keys answered 409
	NotFound       uint64 `json:"not_found"`       // first-time keys answered 404
	Replayed       uint64 `json:"replayed"`        // repeats answered from the idempotency store
	KeyConflicts   uint64 `json:"key_conflicts"`   // repeats with a different body (422)
	Unauthorized   uint64 `json:"unauthorized"`    // missing or wrong bearer token (401)
	BadSignature   uint64 `json:"bad_signature"`   // missing or wrong X-Vigil-Signature (401)
	BadRequest     uint64 `json:"bad_request"`     // 400 and 413 answers
	InjectedErrors uint64 `json:"injected_errors"` // injected 503s
	Throttled      uint64 `json:"throttled"`       // injected 429s
	TimedOut       uint64 `json:"timed_out"`       // answers held back (injected timeouts)
}

type counters struct {
	received, revoked, alreadyRevoked, notFound, replayed, keyConflicts,
	unauthorized, badSignature, badRequest, injectedErrors, throttled, timedOut atomic.Uint64
}

// Option customises a Server.
type Option func(*Server)

// WithRecorder sets a function called once per first-time idempotency key
// that reached the Target (revoked, already revoked or not found, with the
// outcome); it is called from handler goroutines concurrently, before the
// response is written.
func WithRecorder(rec func(truth.Revocation)) Option {
	return func(s *Server) { s.recorder = rec }
}

// WithClock sets the clock that stamps ReceivedAt, read just before
// Target.Revoke is called (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// entry is the idempotency record of one key. hash is fixed at creation;
// status, body and ok are written once, before ready is closed.
type entry struct {
	hash   [sha256.Size]byte
	ready  chan struct{}
	status int
	body   []byte
	ok     bool // false: the first attempt failed and the key was released
}

// Server is the simulated session service's revocation endpoint. It keeps
// every consumed idempotency key for its lifetime (a simulation run).
type Server struct {
	cfg       Config
	target    Target
	recorder  func(truth.Revocation)
	now       func() time.Time
	tokenHash [sha256.Size]byte
	handler   http.Handler
	stats     counters
	quit      chan struct{} // closed when Shutdown starts: injected latency aborts

	fmu          sync.Mutex // guards rng and the failure rates
	rng          *rand.Rand
	errorRate    float64
	throttleRate float64
	timeoutRate  float64

	kmu  sync.Mutex // guards keys
	keys map[string]*entry

	tmu          sync.Mutex // guards traceparents
	traceparents []string

	mu        sync.Mutex // guards the lifecycle below
	ln        net.Listener
	srv       *http.Server
	serveDone chan struct{}
	serveErr  error
	stopping  bool
	stopped   chan struct{}
}

// New validates cfg and returns a Server applying revocations to target.
func New(cfg Config, target Target, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sessionapi: invalid config: %w", err)
	}
	if target == nil {
		return nil, errors.New("sessionapi: nil Target")
	}
	s := &Server{
		cfg:          cfg,
		target:       target,
		now:          time.Now,
		tokenHash:    sha256.Sum256([]byte(cfg.BearerToken)),
		quit:         make(chan struct{}),
		rng:          rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		errorRate:    cfg.ErrorRate,
		throttleRate: cfg.ThrottleRate,
		timeoutRate:  cfg.TimeoutRate,
		keys:         make(map[string]*entry),
	}
	for _, o := range opts {
		o(s)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s, nil
}

// Handler returns the HTTP handler serving POST /revocations.
func (s *Server) Handler() http.Handler { return s.handler }

// SetFailures changes the injected error and throttle rates at run time;
// values are clamped to 0..1 (NaN counts as 0).
func (s *Server) SetFailures(errorRate, throttleRate float64) {
	s.SetFaults(errorRate, throttleRate, s.currentTimeoutRate())
}

func (s *Server) currentTimeoutRate() float64 {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.timeoutRate
}

// SetFaults changes the injected error, throttle and timeout rates at run
// time; values are clamped to 0..1 (NaN counts as 0).
func (s *Server) SetFaults(errorRate, throttleRate, timeoutRate float64) {
	clamp := func(v float64) float64 {
		if math.IsNaN(v) {
			return 0
		}
		return min(max(v, 0), 1)
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.errorRate, s.throttleRate, s.timeoutRate = clamp(errorRate), clamp(throttleRate), clamp(timeoutRate)
}

// Traceparents returns the W3C traceparent header of every revocation
// request received so far, in order ("" for a request without one): what a
// traced session service would continue its trace from.
func (s *Server) Traceparents() []string {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	return append([]string(nil), s.traceparents...)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Received:       c.received.Load(),
		Revoked:        c.revoked.Load(),
		AlreadyRevoked: c.alreadyRevoked.Load(),
		NotFound:       c.notFound.Load(),
		Replayed:       c.replayed.Load(),
		KeyConflicts:   c.keyConflicts.Load(),
		Unauthorized:   c.unauthorized.Load(),
		BadSignature:   c.badSignature.Load(),
		BadRequest:     c.badRequest.Load(),
		InjectedErrors: c.injectedErrors.Load(),
		Throttled:      c.throttled.Load(),
		TimedOut:       c.timedOut.Load(),
	}
}

// Start listens on cfg.Listen and serves in the background; ctx bounds only
// the listen itself. Stop the server with Shutdown.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return fmt.Errorf("sessionapi: start: %w", http.ErrServerClosed)
	}
	if s.srv != nil {
		return errors.New("sessionapi: start: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("sessionapi: listen on %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       time.Minute,
	}
	done := make(chan struct{})
	s.ln, s.srv, s.serveDone = ln, srv, done
	go func() {
		defer close(done)
		err := srv.Serve(ln)
		s.mu.Lock()
		s.serveErr = err
		s.mu.Unlock()
	}()
	return nil
}

// Addr returns the bound host:port (base URL http://ADDR), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server gracefully, closing it forcibly once ctx is
// done; it is idempotent and safe to call without Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopping {
		stopped := s.stopped
		s.mu.Unlock()
		select {
		case <-stopped:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("sessionapi: shutdown: %w", ctx.Err())
		}
	}
	s.stopping = true
	s.stopped = make(chan struct{})
	defer close(s.stopped)
	close(s.quit)
	srv, serveDone := s.srv, s.serveDone
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	var err error
	if serr := srv.Shutdown(ctx); serr != nil {
		_ = srv.Close() // the deadline passed: drop the remaining connections
		err = fmt.Errorf("sessionapi: shutdown: %w", serr)
	}
	<-serveDone
	s.mu.Lock()
	serveErr := s.serveErr
	s.mu.Unlock()
	if err == nil && serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = fmt.Errorf("sessionapi: serve: %w", serveErr)
	}
	return err
}

// Sign returns the X-Vigil-Signature value for body: "sha256=" and the hex
// HMAC-SHA256 of body under key.
func Sign(key, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(key, body))
}

func mac(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// String returns the outcome as a response status: revoked, already_revoked
// or not_found.
func (o Outcome) String() string {
	switch o {
	case Revoked:
		return StatusRevoked
	case AlreadyRevoked:
		return StatusAlreadyRevoked
	case NotFound:
		return StatusNotFound
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		writeError(w, http.StatusNotFound, "no such endpoint; use POST "+Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use POST")
		return
	}
	s.stats.received.Add(1)
	s.tmu.Lock()
	s.traceparents = append(s.traceparents, r.Header.Get("traceparent"))
	s.tmu.Unlock()

	if !s.delay(w, r) {
		return
	}
	if !s.authorized(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		s.stats.badRequest.Add(1)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	if !s.signed(w, r, body) {
		return
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	if key == "" || len(key) > maxKeyLen {
		s.stats.badRequest.Add(1)
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s header is required (1 to %d bytes)", HeaderIdempotencyKey, maxKeyLen))
		return
	}
	if !s.survives(w) {
		return
	}
	req, err := decode(body)
	if err != nil {
		s.stats.badRequest.Add(1)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.fmu.Lock()
	stall := s.rng.Float64() < s.timeoutRate
	s.fmu.Unlock()
	s.revoke(w, r, key, sha256.Sum256(body), req, stall)
}

// delay waits the injected latency; false when the request was abandoned.
func (s *Server) delay(w http.ResponseWriter, r *http.Request) bool {
	d := s.cfg.Latency
	if j := s.cfg.LatencyJitter; j > 0 {
		s.fmu.Lock()
		d += time.Duration(s.rng.Int64N(int64(j) + 1))
		s.fmu.Unlock()
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.quit:
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return false
	}
}

// authorized checks the bearer token, answering 401 when it is missing or wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.BearerToken == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	msg := "missing bearer token"
	if ok && strings.EqualFold(scheme, "Bearer") && token != "" {
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1 {
			return true
		}
		msg = "invalid bearer token"
	} else if h != "" {
		msg = "Authorization header must be \"Bearer <token>\""
	}
	s.stats.unauthorized.Add(1)
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeError(w, http.StatusUnauthorized, msg)
	return false
}

// signed checks X-Vigil-Signature, answering 401 when it is missing or wrong.
func (s *Server) signed(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if s.cfg.HMACKey == "" {
		return true
	}
	sig := r.Header.Get(HeaderSignature)
	msg := "missing " + HeaderSignature + " header"
	if sig != "" {
		h, ok := strings.CutPrefix(sig, signaturePrefix)
		got, err := hex.DecodeString(h)
		if ok && err == nil && hmac.Equal(got, mac([]byte(s.cfg.HMACKey), body)) {
			return true
		}
		msg = "invalid " + HeaderSignature + " (want sha256=<hex HMAC-SHA256 of the body>)"
	}
	s.stats.badSignature.Add(1)
	writeError(w, http.StatusUnauthorized, msg)
	return false
}

// survives draws the injected failures, answering 429 or 503 when one hits.
func (s *Server) survives(w http.ResponseWriter) bool {
	s.fmu.Lock()
	t, e := s.rng.Float64(), s.rng.Float64()
	throttle, fail := t < s.throttleRate, e < s.errorRate
	s.fmu.Unlock()
	switch {
	case throttle:
		s.stats.throttled.Add(1)
		w.Header().Set("Retry-After", s.cfg.retryAfterSeconds())
		writeError(w, http.StatusTooManyRequests, "throttled (injected)")
		return false
	case fail:
		s.stats.injectedErrors.Add(1)
		writeError(w, http.StatusServiceUnavailable, "unavailable (injected)")
		return false
	}
	return true
}

// decode parses body strictly and validates it; errors name the problem.
func decode(body []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, describeJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("invalid request body: unexpected data after the JSON object")
	}
	if req.ID == "" {
		return req, errors.New("invalid request: id is required")
	}
	var field, value string
	switch req.Scope {
	case ScopeSession:
		field, value = "session_id", req.SessionID
	case ScopeFamily:
		field, value = "family_id", req.FamilyID
	case ScopeUser:
		field, value = "user_id", req.UserID
	case "":
		return req, errors.New("invalid request: scope is required (session, family or user)")
	default:
		return req, fmt.Errorf("invalid request: scope must be session, family or user, got %q", req.Scope)
	}
	if value == "" {
		return req, fmt.Errorf("invalid request: %s is required for scope %s", field, req.Scope)
	}
	return req, nil
}

func describeJSONError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("invalid request body: empty, want a JSON object")
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("invalid request body: malformed JSON at byte %d: %w", se.Offset, err)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return fmt.Errorf("invalid request body: want a JSON object, got JSON %s: %w", te.Value, err)
		}
		return fmt.Errorf("invalid request body: field %s: want %s, got JSON %s: %w", te.Field, te.Type, te.Value, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("invalid request body: truncated JSON: %w", err)
	}
	// Unknown fields ("json: unknown field \"x\"") and bad requested_at
	// timestamps end up here; their messages name the field.
	return fmt.Errorf("invalid request body: %w", err)
}

// revoke applies req once per idempotency key and answers; repeats replay
// the stored answer or, with a different body, get 422.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, key string, hash [sha256.Size]byte, req Request, stall bool) {
	s.kmu.Lock()
	e, seen := s.keys[key]
	if !seen {
		e = &entry{hash: hash, ready: make(chan struct{})}
		s.keys[key] = e
	}
	s.kmu.Unlock()

	if seen {
		if e.hash != hash {
			s.stats.keyConflicts.Add(1)
			writeError(w, http.StatusUnprocessableEntity, HeaderIdempotencyKey+" was already used with a different request body")
			return
		}
		select {
		case <-e.ready:
		case <-r.Context().Done():
			return
		}
		if !e.ok {
			writeError(w, http.StatusServiceUnavailable, "the first request with this "+HeaderIdempotencyKey+" failed; retry")
			return
		}
		s.stats.replayed.Add(1)
		if stall && !s.hold(r) {
			return
		}
		w.Header().Set(HeaderIdempotentReplay, "true")
		writeJSON(w, e.status, e.body)
		return
	}

	defer func() {
		if !e.ok { // Target panicked or misbehaved: release the key
			s.kmu.Lock()
			delete(s.keys, key)
			s.kmu.Unlock()
		}
		close(e.ready)
	}()
	receivedAt := s.now()
	outcome, enforced := s.target.Revoke(req, receivedAt)
	var status int
	switch outcome {
	case Revoked:
		status = http.StatusCreated
		s.stats.revoked.Add(1)
	case AlreadyRevoked:
		status = http.StatusConflict
		s.stats.alreadyRevoked.Add(1)
	case NotFound:
		status, enforced = http.StatusNotFound, false
		s.stats.notFound.Add(1)
	default:
		writeError(w, http.StatusInternalServerError, "target returned "+outcome.String())
		return
	}
	body, err := json.Marshal(Response{ID: req.ID, Status: outcome.String(), Enforced: enforced})
	if err != nil { // cannot happen: Response has only strings and a bool
		writeError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	body = append(body, '\n')
	if s.recorder != nil {
		s.recorder(truth.Revocation{
			Record:      truth.KindRevocation,
			ReceivedAt:  receivedAt,
			ID:          req.ID,
			Scope:       req.Scope,
			Tenant:      req.Tenant,
			UserID:      req.UserID,
			SessionID:   req.SessionID,
			FamilyID:    req.FamilyID,
			Reason:      req.Reason,
			AnomalyID:   req.AnomalyID,
			RequestedAt: req.RequestedAt,
			Enforced:    enforced,
			Outcome:     outcome.String(),
		})
	}
	e.status, e.body, e.ok = status, body, true
	if stall && !s.hold(r) {
		return
	}
	writeJSON(w, status, body)
}

// hold delays an answer by TimeoutDelay (an injected timeout: the request
// was processed); false when the client gave up or the server is stopping.
func (s *Server) hold(r *http.Request) bool {
	s.stats.timedOut.Add(1)
	t := time.NewTimer(s.cfg.TimeoutDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.quit:
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	writeJSON(w, status, append(body, '\n'))
}
