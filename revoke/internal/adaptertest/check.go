package adaptertest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

// Epoch is the time a NewClock starts at.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a fake time source, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock standing at Epoch.
func NewClock() *Clock { return &Clock{t: Epoch} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// WriteFile writes content to a new file in a temporary directory of t and returns its path.
func WriteFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Missing returns the path of a file that does not exist.
func Missing(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }

// Build returns the adapter newAdapter makes from cfg with a client from revoke.NewHTTPClient, failing t on an error.
func Build[A any](t *testing.T, cfg revoke.AdapterConfig, newAdapter func(revoke.AdapterConfig, *http.Client) (A, error)) A {
	t.Helper()
	client, err := revoke.NewHTTPClient(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAdapter(cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// NoLeak fails t when err's message contains any of leaks (planted secrets, their fragments, issued tokens).
func NoLeak(t *testing.T, err error, leaks ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range leaks {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error leaks a credential (%q): %v", s, err)
		}
	}
}

// SessionIntent returns a new session-scope intent for session s1.
func SessionIntent() *revoke.Intent {
	return &revoke.Intent{ID: "i", Scope: revoke.ScopeSession, SessionID: "s1"}
}

// BadIntents returns intents no adapter can act on: each scope without the id it needs, and unknown scopes.
func BadIntents() []revoke.Intent {
	return []revoke.Intent{
		{ID: "a", Scope: revoke.ScopeSession, FamilyID: "f", UserID: "u"},
		{ID: "b", Scope: revoke.ScopeFamily, UserID: "u"},
		{ID: "c", Scope: revoke.ScopeUser, SessionID: "s"},
		{ID: "d", Scope: "tenant", UserID: "u"},
		{ID: "e", Scope: "realm", UserID: "u"},
	}
}

// StatusCase is one row of a status-classification table: an API answer and the Result it must give.
type StatusCase struct {
	// Name names the subtest.
	Name string
	// Status is the status of the API's answer.
	Status int
	// Header holds the answer's headers.
	Header http.Header
	// Want is the outcome the adapter must give.
	Want revoke.Outcome
	// RetryAfter is the RetryAfter it must give.
	RetryAfter time.Duration
	// ErrHas is a part its error must have; "" for none.
	ErrHas string
}

// StatusCases returns the rows every adapter shares (revoke.Classify's:
// 2xx, 404 and 409 done; 408, 429 and 5xx retried with Retry-After; other
// 4xx permanent), followed by extra, the adapter's own 401 and 403 rows.
func StatusCases(extra ...StatusCase) []StatusCase {
	return append([]StatusCase{
		{"200", http.StatusOK, nil, revoke.Done, 0, ""},
		{"202", http.StatusAccepted, nil, revoke.Done, 0, ""},
		{"204", http.StatusNoContent, nil, revoke.Done, 0, ""},
		{"404", http.StatusNotFound, nil, revoke.Done, 0, ""},
		{"409", http.StatusConflict, nil, revoke.Done, 0, ""},
		{"429 Retry-After", http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, revoke.Retry, 7 * time.Second, "HTTP 429"},
		{"429 bare", http.StatusTooManyRequests, nil, revoke.Retry, 0, "HTTP 429"},
		{"408", http.StatusRequestTimeout, nil, revoke.Retry, 0, "HTTP 408"},
		{"500", http.StatusInternalServerError, nil, revoke.Retry, 0, "HTTP 500"},
		{"502", http.StatusBadGateway, nil, revoke.Retry, 0, "HTTP 502"},
		{"503", http.StatusServiceUnavailable, nil, revoke.Retry, 0, "HTTP 503"},
		{"503 Retry-After", http.StatusServiceUnavailable, http.Header{"Retry-After": {"3"}}, revoke.Retry, 3 * time.Second, "HTTP 503"},
		{"400", http.StatusBadRequest, nil, revoke.Permanent, 0, "HTTP 400"},
		{"405", http.StatusMethodNotAllowed, nil, revoke.Permanent, 0, "HTTP 405"},
	}, extra...)
}

// Check fails t unless r is the result c describes.
func (c StatusCase) Check(t *testing.T, r revoke.Result) {
	t.Helper()
	if r.Outcome != c.Want || r.Status != c.Status || r.RetryAfter != c.RetryAfter {
		t.Fatalf("result = %+v, want %v status %d retry-after %v", r, c.Want, c.Status, c.RetryAfter)
	}
	if c.ErrHas != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), c.ErrHas)) {
		t.Fatalf("error %v does not mention %q", r.Err, c.ErrHas)
	}
	if c.Want == revoke.Done && r.Err != nil {
		t.Fatalf("done with error %v", r.Err)
	}
}
