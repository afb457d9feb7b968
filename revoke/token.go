package revoke

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// TokenRenewBefore is how long before its expiry a cached access token is renewed.
const TokenRenewBefore = 30 * time.Second

// TokenFetcher obtains a new access token (typically by the OAuth
// client-credentials grant): the token and its lifetime as the server
// stated it (expires_in; 0 when it sent none), or a Result that is not Done
// saying why none could be had, classified as the adapter sees fit.
type TokenFetcher func(ctx context.Context) (token string, expiresIn time.Duration, r Result)

// TokenCache holds an adapter's access token: it fetches one on first use,
// keeps it until TokenRenewBefore ahead of its expiry (half-way through a
// lifetime shorter than twice that; one minute when the server stated
// none), lets only one fetch run at a time, and forgets a token the API
// refused so that the next call renews it. It is safe for concurrent use.
type TokenCache struct {
	name  string
	fetch TokenFetcher
	now   func() time.Time

	renew chan struct{} // a one-slot semaphore: held while a token is fetched
	mu    sync.Mutex    // guards tok and exp
	tok   string
	exp   time.Time
}

// NewTokenCache returns an empty TokenCache that obtains tokens with fetch;
// name (e.g. "keycloak") prefixes the cache's own errors, and now is its
// clock (nil: time.Now).
func NewTokenCache(name string, fetch TokenFetcher, now func() time.Time) *TokenCache {
	if now == nil {
		now = time.Now
	}
	return &TokenCache{name: name, fetch: fetch, now: now, renew: make(chan struct{}, 1)}
}

// Token returns a valid access token, the cached one while it is fresh or
// else a new one from the fetcher (callers arriving during a fetch wait for
// it, or for ctx); ok is false when none could be had, and r says why.
func (c *TokenCache) Token(ctx context.Context) (token string, r Result, ok bool) {
	if tok := c.cached(); tok != "" {
		return tok, r, true
	}
	select {
	case c.renew <- struct{}{}:
	case <-ctx.Done():
		return "", TransportError(fmt.Errorf("%s: waiting for an access token: %w", c.name, ctx.Err())), false
	}
	defer func() { <-c.renew }()
	if tok := c.cached(); tok != "" { // another call renewed it meanwhile
		return tok, r, true
	}
	tok, expiresIn, r := c.fetch(ctx)
	if r.Outcome != Done {
		return "", r, false
	}
	now := c.now()
	c.mu.Lock()
	c.tok, c.exp = tok, now.Add(tokenLifetime(expiresIn))
	c.mu.Unlock()
	return tok, r, true
}

// Drop forgets token if it is still the cached one (a concurrent renewal
// may have replaced it), so that the next Token fetches a new one.
func (c *TokenCache) Drop(token string) {
	c.mu.Lock()
	if c.tok == token {
		c.tok = ""
	}
	c.mu.Unlock()
}

// Call makes one authorized request: it runs send with a valid token and,
// when the answer is 401, drops that token and, unless *renewed is already
// true, sets it and runs send once more with a new token; a 401 it does not
// retry gets "(a freshly issued access token was refused)" added to its
// error. A failed token request's Result is returned as it is. Share
// renewed between the calls of one attempt to renew at most once per
// attempt; nil renews at most once per Call.
func (c *TokenCache) Call(ctx context.Context, renewed *bool, send func(token string) Result) Result {
	if renewed == nil {
		renewed = new(bool)
	}
	for {
		tok, r, ok := c.Token(ctx)
		if !ok {
			return r
		}
		r = send(tok)
		if r.Status != http.StatusUnauthorized {
			return r
		}
		c.Drop(tok)
		if !*renewed {
			*renewed = true
			continue
		}
		r.Err = fmt.Errorf("%w (a freshly issued access token was refused)", r.Err)
		return r
	}
}

// cached returns the cached token while it is fresh, else "".
func (c *TokenCache) cached() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != "" && c.now().Before(c.exp) {
		return c.tok
	}
	return ""
}

// tokenLifetime is how long a token that expires in expiresIn is used:
// until TokenRenewBefore ahead of its expiry, or half its life when that is
// shorter than twice TokenRenewBefore; one minute when the server stated none.
func tokenLifetime(expiresIn time.Duration) time.Duration {
	if expiresIn <= 0 {
		return time.Minute
	}
	if expiresIn < 2*TokenRenewBefore {
		return expiresIn / 2
	}
	return expiresIn - TokenRenewBefore
}

// ParseTokenAnswer reads an OAuth token endpoint's JSON success answer
// (access_token, expires_in in seconds); ok is false when body is not JSON
// or carries no access_token.
func ParseTokenAnswer(body []byte) (token string, expiresIn time.Duration, ok bool) {
	var ans struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.AccessToken == "" {
		return "", 0, false
	}
	return ans.AccessToken, time.Duration(ans.ExpiresIn) * time.Second, true
}

// OAuthErrorText renders an OAuth error answer ({"error",
// "error_description"}) for a message: ": error: description", or "" when
// body is not one.
func OAuthErrorText(body []byte) string {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return ""
	}
	if e.Description != "" {
		return ": " + e.Error + ": " + e.Description
	}
	return ": " + e.Error
}
