package revoke

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/vigilhq/vigil/internal/secretfile"
	"github.com/vigilhq/vigil/internal/telemetry"
)

// Adapter executes revocations against one session service.
//
// Revoke is called from many revoker goroutines at once; implementations
// must be safe for concurrent use. Each call is one attempt: the revoker
// owns retries, backoff, the circuit breaker and the deadline, and calls
// again with the same Intent (and so the same idempotency key) until the
// Result is Done or Permanent. An adapter must not retry on its own,
// except to renew an expired access token once.
type Adapter interface {
	// Revoke makes one attempt at in and classifies the answer.
	Revoke(ctx context.Context, in *Intent) Result
	// Endpoint names the API the circuit breaker and the metrics key on (scheme://host).
	Endpoint() string
}

// Outcome classifies an attempt.
type Outcome int

// Outcomes of an attempt.
const (
	// Done: the subject is revoked, or was already, or is gone (2xx, 404, 409).
	Done Outcome = iota + 1
	// Retry: a transient failure (network error, timeout, 408, 429, 5xx).
	Retry
	// Permanent: the API refused the request (another 4xx); retrying cannot help.
	Permanent
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case Permanent:
		return "permanent"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the classified answer to one attempt.
type Result struct {
	// Outcome says whether the action is done, may be retried, or failed for good.
	Outcome Outcome
	// Status is the HTTP status of the last call the attempt made, 0 when none was answered.
	Status int
	// RetryAfter is the server's Retry-After, when it sent one with a retryable answer.
	RetryAfter time.Duration
	// Err describes a failure; it never contains a credential.
	Err error
	// Note says how a Done came about when it is not a plain success, e.g. "already gone (404)".
	Note string
}

// Classify maps an HTTP answer onto a Result by DESIGN.md §6: 2xx, 404 and
// 409 are done; 408, 429 and 5xx are retried (with Retry-After); any other
// status is a permanent failure. body is a short excerpt for the error.
func Classify(status int, h http.Header, body []byte) Result {
	r := Result{Status: status}
	switch {
	case status >= 200 && status < 300:
		r.Outcome = Done
	case status == http.StatusNotFound:
		r.Outcome, r.Note = Done, "already gone (404)"
	case status == http.StatusConflict:
		r.Outcome, r.Note = Done, "already revoked (409)"
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		r.Outcome = Retry
		r.RetryAfter = ParseRetryAfter(h.Get("Retry-After"), time.Now())
		r.Err = fmt.Errorf("HTTP %d%s", status, excerpt(body))
	default:
		r.Outcome = Permanent
		r.Err = fmt.Errorf("HTTP %d%s", status, excerpt(body))
	}
	return r
}

// TransportError classifies a call that got no answer (refused, reset,
// timed out): always retryable, since the request may not have arrived.
func TransportError(err error) Result {
	return Result{Outcome: Retry, Err: err}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date; 0 when absent or unreadable. Values are capped at one hour.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(max(s, 0)) * time.Second
		if s > 3600 {
			d = time.Hour
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	}
	return min(d, time.Hour)
}

// excerpt renders the start of an error body for a message, or "".
func excerpt(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + strings.Join(strings.Fields(s), " ")
}

// Do sends req with client and classifies the answer; the body is read
// (up to 64 KiB) and closed. Adapters whose success answer matters read
// it from the returned bytes, and those that read headers Classify does
// not (e.g. a rate-limit reset) from the returned header, which is nil
// when no answer arrived.
//
// When req's context carries a span (the revoker's attempt span, with
// tracing on), its traceparent and tracestate headers are set, so the
// session service can continue the trace; otherwise nothing is added.
func Do(client *http.Client, req *http.Request) (Result, []byte, http.Header) {
	telemetry.TraceContext.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
	resp, err := client.Do(req)
	if err != nil {
		return TransportError(fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), scrubURLError(err))), nil, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil && resp.StatusCode < 300 {
		return TransportError(fmt.Errorf("%s %s: reading answer: %w", req.Method, req.URL.Redacted(), err)), nil, resp.Header
	}
	r := Classify(resp.StatusCode, resp.Header, body)
	if r.Err != nil {
		r.Err = fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), r.Err)
	}
	return r, body, resp.Header
}

// scrubURLError drops the *url.Error wrapper (its message repeats the URL).
func scrubURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			var ne net.Error
			if errors.As(inner, &ne) && ne.Timeout() {
				return fmt.Errorf("timed out: %w", inner)
			}
			return inner
		}
	}
	return err
}

// NewHTTPClient builds the HTTP client an adapter uses: the section's
// timeout, TLS (custom CA, client certificate), no redirects (a redirected
// revocation would resend credentials elsewhere) and keep-alive
// connections sized for the revoker's concurrency.
func NewHTTPClient(c AdapterConfig, concurrency int) (*http.Client, error) {
	tc, err := c.TLS.Build("revoke.adapter.tls")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = max(concurrency, 2)
	tr.ResponseHeaderTimeout = c.Timeout
	return &http.Client{
		Transport: tr,
		Timeout:   c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// DefaultHTTPClient returns client, or when it is nil the client
// NewHTTPClient builds from c for a concurrency of 4: what an adapter's New
// uses when it is not handed one.
func DefaultHTTPClient(client *http.Client, c AdapterConfig) (*http.Client, error) {
	if client != nil {
		return client, nil
	}
	return NewHTTPClient(c, 4)
}

// ReadSecretFile reads a one-line secret (trailing newline trimmed); an
// unreadable or empty file is an error naming key, never quoting the content.
func ReadSecretFile(key, path string) (string, error) { return secretfile.Read(key, path) }

// EndpointOf returns scheme://host of a base URL, for Adapter.Endpoint.
func EndpointOf(base string) string {
	if i := strings.Index(base, "://"); i >= 0 {
		rest := base[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		}
		return base[:i+3] + rest
	}
	return base
}
