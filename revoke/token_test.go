package revoke_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/internal/adaptertest"
)

// fetcher is a fake revoke.TokenFetcher issuing tok-1, tok-2, … that live
// expiresIn, or failing with fail when it is set.
type fetcher struct {
	mu        sync.Mutex
	calls     int
	expiresIn time.Duration
	fail      *revoke.Result
	hold      chan struct{} // when set, each fetch waits for it (after closing entered)
	entered   chan struct{}
	enter     sync.Once
}

func (f *fetcher) fetch(ctx context.Context) (string, time.Duration, revoke.Result) {
	if f.hold != nil {
		f.enter.Do(func() { close(f.entered) })
		<-f.hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return "", 0, *f.fail
	}
	return fmt.Sprint("tok-", f.calls), f.expiresIn, revoke.Result{Outcome: revoke.Done, Status: http.StatusOK}
}

func (f *fetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func newCache(f *fetcher) (*revoke.TokenCache, *adaptertest.Clock) {
	c := adaptertest.NewClock()
	return revoke.NewTokenCache("idp", f.fetch, c.Now), c
}

func mustToken(t *testing.T, c *revoke.TokenCache) string {
	t.Helper()
	tok, r, ok := c.Token(context.Background())
	if !ok || tok == "" || r.Err != nil {
		t.Fatalf("Token = %q, %+v, %v; want a token", tok, r, ok)
	}
	return tok
}

func TestTokenCached(t *testing.T) {
	f := &fetcher{expiresIn: 5 * time.Minute}
	c, _ := newCache(f)
	for range 5 {
		if tok := mustToken(t, c); tok != "tok-1" {
			t.Fatalf("token = %q, want tok-1", tok)
		}
	}
	if n := f.count(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tests := []struct {
		name      string
		expiresIn time.Duration
		stillGood time.Duration // the token is reused this long after issue
		renewed   time.Duration // and renewed by this long after issue
	}{
		{"24 h token, 30 s margin", 24 * time.Hour, 24*time.Hour - 31*time.Second, 24*time.Hour - 30*time.Second},
		{"5 min token, 30 s margin", 300 * time.Second, 269 * time.Second, 270 * time.Second},
		{"1 min token, 30 s margin", 60 * time.Second, 29 * time.Second, 30 * time.Second},
		{"short token, half-life", 40 * time.Second, 19 * time.Second, 20 * time.Second},
		{"shorter token, half-life", 20 * time.Second, 9 * time.Second, 10 * time.Second},
		{"no expires_in, one minute", 0, 59 * time.Second, 60 * time.Second},
		{"negative expires_in, one minute", -time.Second, 59 * time.Second, 60 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fetcher{expiresIn: tc.expiresIn}
			c, clk := newCache(f)
			mustToken(t, c)
			clk.Advance(tc.stillGood)
			if tok := mustToken(t, c); tok != "tok-1" || f.count() != 1 {
				t.Fatalf("token = %q after %d fetches before expiry, want tok-1 after 1", tok, f.count())
			}
			clk.Advance(tc.renewed - tc.stillGood)
			if tok := mustToken(t, c); tok != "tok-2" || f.count() != 2 {
				t.Fatalf("token = %q after %d fetches at expiry, want tok-2 after 2", tok, f.count())
			}
		})
	}
}

func TestTokenFetchFailure(t *testing.T) {
	fail := revoke.Result{Outcome: revoke.Permanent, Status: http.StatusUnauthorized, Err: errors.New("idp: the token endpoint refused the client credentials")}
	f := &fetcher{fail: &fail}
	c, _ := newCache(f)
	for i := range 2 {
		tok, r, ok := c.Token(context.Background())
		if ok || tok != "" || r.Outcome != fail.Outcome || r.Status != fail.Status || r.Err != fail.Err {
			t.Fatalf("Token = %q, %+v, %v; want the fetcher's result", tok, r, ok)
		}
		if n := f.count(); n != i+1 {
			t.Fatalf("fetches = %d, want %d: a failure must not be cached", n, i+1)
		}
	}
	f.mu.Lock()
	f.fail = nil
	f.mu.Unlock()
	if tok := mustToken(t, c); tok != "tok-3" {
		t.Fatalf("token = %q, want tok-3", tok)
	}
}

func TestTokenFetchedOnceUnderConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fetcher{expiresIn: time.Hour, hold: make(chan struct{}), entered: make(chan struct{})}
		c, _ := newCache(f)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if tok, r, ok := c.Token(context.Background()); !ok || tok != "tok-1" {
					t.Errorf("Token = %q, %+v, %v; want tok-1", tok, r, ok)
				}
			})
		}
		<-f.entered
		synctest.Wait() // every other caller is queued behind the fetch
		close(f.hold)
		wg.Wait()
		if n := f.count(); n != 1 {
			t.Fatalf("fetches = %d, want 1", n)
		}
	})
}

func TestTokenWaitHonoursContext(t *testing.T) {
	f := &fetcher{expiresIn: time.Hour, hold: make(chan struct{}), entered: make(chan struct{})}
	c, _ := newCache(f)
	done := make(chan string)
	go func() { tok, _, _ := c.Token(context.Background()); done <- tok }()
	<-f.entered // a fetch is in flight
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tok, r, ok := c.Token(ctx)
	if ok || tok != "" || r.Outcome != revoke.Retry || r.Err == nil ||
		!strings.Contains(r.Err.Error(), "idp: waiting for an access token") || !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("Token = %q, %+v, %v; want a retryable context error", tok, r, ok)
	}
	close(f.hold)
	if tok := <-done; tok != "tok-1" {
		t.Fatalf("the fetching call got %q, want tok-1", tok)
	}
}

func TestTokenDrop(t *testing.T) {
	f := &fetcher{expiresIn: time.Hour}
	c, _ := newCache(f)
	old := mustToken(t, c)
	c.Drop(old)
	cur := mustToken(t, c)
	if cur != "tok-2" {
		t.Fatalf("token after Drop = %q, want tok-2", cur)
	}
	c.Drop(old) // stale: a concurrent renewal already replaced it
	if tok := mustToken(t, c); tok != cur || f.count() != 2 {
		t.Fatalf("token after a stale Drop = %q after %d fetches, want %s after 2", tok, f.count(), cur)
	}
}

func TestTokenNilClock(t *testing.T) {
	f := &fetcher{expiresIn: time.Hour}
	c := revoke.NewTokenCache("idp", f.fetch, nil)
	mustToken(t, c)
	mustToken(t, c)
	if n := f.count(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

// answers returns a send function answering with the statuses in order
// (the last one repeated) and recording the tokens it was given.
func answers(statuses ...int) (send func(string) revoke.Result, seen *[]string) {
	seen = new([]string)
	return func(tok string) revoke.Result {
		*seen = append(*seen, tok)
		st := statuses[min(len(*seen), len(statuses))-1]
		r := revoke.Classify(st, nil, []byte("refused "+tok))
		if r.Err != nil {
			r.Err = revoke.ScrubError(r.Err, tok)
		}
		return r
	}, seen
}

func TestTokenCall(t *testing.T) {
	tests := []struct {
		name        string
		renewed     bool // *renewed before the call
		statuses    []int
		want        revoke.Outcome
		wantStatus  int
		wantSeen    []string
		wantRenewed bool
		errHas      string
	}{
		{"success", false, []int{204}, revoke.Done, 204, []string{"tok-1"}, false, ""},
		{"403 is not renewed", false, []int{403}, revoke.Permanent, 403, []string{"tok-1"}, false, "HTTP 403"},
		{"401 renews once", false, []int{401, 204}, revoke.Done, 204, []string{"tok-1", "tok-2"}, true, ""},
		{"401 twice", false, []int{401, 401}, revoke.Permanent, 401, []string{"tok-1", "tok-2"}, true, "(a freshly issued access token was refused)"},
		{"401 after the attempt renewed", true, []int{401}, revoke.Permanent, 401, []string{"tok-1"}, true, "(a freshly issued access token was refused)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fetcher{expiresIn: time.Hour}
			c, _ := newCache(f)
			send, seen := answers(tc.statuses...)
			renewed := tc.renewed
			r := c.Call(context.Background(), &renewed, send)
			if r.Outcome != tc.want || r.Status != tc.wantStatus {
				t.Fatalf("Call = %+v, want %v with %d", r, tc.want, tc.wantStatus)
			}
			if fmt.Sprint(*seen) != fmt.Sprint(tc.wantSeen) || renewed != tc.wantRenewed {
				t.Fatalf("tokens sent = %q, renewed = %v; want %q, %v", *seen, renewed, tc.wantSeen, tc.wantRenewed)
			}
			if tc.errHas != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tc.errHas)) {
				t.Fatalf("error %v does not mention %q", r.Err, tc.errHas)
			}
			if tc.errHas == "" && r.Err != nil {
				t.Fatalf("unexpected error %v", r.Err)
			}
			// A refused token is not used again.
			want := (*seen)[len(*seen)-1]
			if r.Status == http.StatusUnauthorized {
				want = fmt.Sprint("tok-", f.count()+1)
			}
			if tok := mustToken(t, c); tok != want {
				t.Fatalf("cached token after the call = %q, want %q", tok, want)
			}
		})
	}
}

func TestTokenCallNilRenewed(t *testing.T) {
	f := &fetcher{expiresIn: time.Hour}
	c, _ := newCache(f)
	for i := range 2 { // each Call renews once on its own
		send, seen := answers(401, 204)
		if r := c.Call(context.Background(), nil, send); r.Outcome != revoke.Done || len(*seen) != 2 {
			t.Fatalf("call %d = %+v after %d sends, want done after 2", i, r, len(*seen))
		}
	}
	send, seen := answers(401)
	r := c.Call(context.Background(), nil, send)
	if r.Status != http.StatusUnauthorized || len(*seen) != 2 || !strings.Contains(r.Err.Error(), "freshly issued") {
		t.Fatalf("Call = %+v after %d sends, want 401 after 2", r, len(*seen))
	}
}

func TestTokenCallFetchFailure(t *testing.T) {
	fail := revoke.Result{Outcome: revoke.Permanent, Status: http.StatusUnauthorized, Err: errors.New("idp: the token endpoint refused the client credentials")}
	f := &fetcher{fail: &fail}
	c, _ := newCache(f)
	send, seen := answers(204)
	renewed := false
	r := c.Call(context.Background(), &renewed, send)
	if r.Err != fail.Err || r.Status != fail.Status || r.Outcome != fail.Outcome || len(*seen) != 0 || renewed {
		t.Fatalf("Call = %+v after %d sends (renewed %v), want the token failure as it is and no send", r, len(*seen), renewed)
	}
}

func TestParseTokenAnswer(t *testing.T) {
	tests := []struct {
		body      string
		token     string
		expiresIn time.Duration
		ok        bool
	}{
		{`{"access_token":"abc","expires_in":300,"token_type":"Bearer"}`, "abc", 300 * time.Second, true},
		{`{"access_token":"abc"}`, "abc", 0, true},
		{`{"expires_in":300}`, "", 0, false},
		{`{"access_token":""}`, "", 0, false},
		{`<html>login</html>`, "", 0, false},
		{``, "", 0, false},
	}
	for _, tc := range tests {
		tok, exp, ok := revoke.ParseTokenAnswer([]byte(tc.body))
		if tok != tc.token || exp != tc.expiresIn || ok != tc.ok {
			t.Errorf("ParseTokenAnswer(%s) = %q, %v, %v; want %q, %v, %v", tc.body, tok, exp, ok, tc.token, tc.expiresIn, tc.ok)
		}
	}
}

func TestTokenOAuthErrorText(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`, ": unauthorized_client: Invalid client or Invalid client credentials"},
		{`{"error":"invalid_request"}`, ": invalid_request"},
		{`{"error_description":"no code"}`, ""},
		{`{"error":{"code":1}}`, ""},
		{`not here`, ""},
	}
	for _, tc := range tests {
		if got := revoke.OAuthErrorText([]byte(tc.body)); got != tc.want {
			t.Errorf("OAuthErrorText(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
