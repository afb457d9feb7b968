package revoke

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"
)

// ClientCredentials is an adapter's OAuth client-credentials grant: where
// it obtains access tokens, and how its errors name the settings to check.
// Its Fetch does the part of a TokenFetcher that every such adapter shares.
type ClientCredentials struct {
	// Name prefixes errors, e.g. "keycloak".
	Name string
	// TokenURL is the token endpoint.
	TokenURL string
	// ClientID is revoke.adapter.client_id.
	ClientID string
	// Secret is the client secret; no error carries it.
	Secret string
	// Client describes what revoke.adapter.client_id must name, e.g. "a machine-to-machine application".
	Client string
	// Check names what to check when the endpoint answers 2xx without a token, e.g. "revoke.adapter.url (https://TENANT.auth0.com)".
	Check string
	// Refused, when set, describes a refusal other than 400 or 401 (err is the
	// scrubbed "POST url: HTTP status: OAuth error"); nil, or a nil answer,
	// keeps "NAME: obtaining an access token: err".
	Refused func(status int, err error) error
}

// Fetch posts a token request body of type contentType to TokenURL, sends
// it with send (which classifies the answer and returns its body, as Do
// does), and reads the answer: the access token and its expires_in, or a
// Result that is not Done. Transient failures stay retryable; any other
// failure is permanent, its error naming the settings to check and quoting
// the OAuth error rather than the answer, never the secret.
func (c *ClientCredentials) Fetch(ctx context.Context, contentType string, body []byte, send func(*http.Request) (Result, []byte)) (string, time.Duration, Result) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, bytes.NewReader(body))
	if err != nil {
		return "", 0, Result{Outcome: Permanent, Err: fmt.Errorf("%s: %w", c.Name, err)}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	r, answer := send(req)
	r.Err = ScrubError(r.Err, c.Secret)
	switch {
	case r.Status >= 200 && r.Status < 300:
		tok, expiresIn, ok := ParseTokenAnswer(answer)
		if !ok {
			return "", 0, Result{Outcome: Permanent, Status: r.Status, Err: fmt.Errorf(
				"%s: token endpoint %s answered %d without an access_token; check %s", c.Name, c.TokenURL, r.Status, c.Check)}
		}
		return tok, expiresIn, r
	case r.Outcome == Retry:
		r.Err = fmt.Errorf("%s: obtaining an access token: %w", c.Name, r.Err)
		return "", 0, r
	}
	// Report the OAuth error, not an excerpt of the answer.
	err = ScrubError(fmt.Errorf("POST %s: HTTP %d%s", c.TokenURL, r.Status, OAuthErrorText(answer)), c.Secret)
	r.Outcome, r.Note, r.Err = Permanent, "", nil
	switch {
	case r.Status == http.StatusBadRequest || r.Status == http.StatusUnauthorized:
		r.Err = fmt.Errorf("%s: the token endpoint refused the client credentials; check revoke.adapter.client_id (%q, %s) and the secret in revoke.adapter.client_secret_file: %w", c.Name, c.ClientID, c.Client, err)
	case c.Refused != nil:
		r.Err = c.Refused(r.Status, err)
	}
	if r.Err == nil {
		r.Err = fmt.Errorf("%s: obtaining an access token: %w", c.Name, err)
	}
	return "", 0, r
}

// NewBearerRequest returns a bodyless API request of method to u that
// accepts JSON and, unless token is "", carries it as "Authorization:
// Bearer <token>"; name (e.g. "kratos") prefixes its error.
func NewBearerRequest(ctx context.Context, name, method, u, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}
