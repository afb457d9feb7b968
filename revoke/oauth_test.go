package revoke_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

func TestTokenClientCredentials(t *testing.T) {
	const secret = "cc-PLANTED-secret"
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		want       revoke.Outcome
		token      string
		expiresIn  time.Duration
		retryAfter time.Duration
		errHas     []string
	}{
		{name: "token", status: 200, body: `{"access_token":"tok","expires_in":60}`, want: revoke.Done, token: "tok", expiresIn: time.Minute},
		{name: "2xx without token", status: 200, body: `<html>` + secret, want: revoke.Permanent,
			errHas: []string{"idp: token endpoint", "answered 200 without an access_token; check revoke.adapter.url"}},
		{name: "401", status: 401, body: `{"error":"invalid_client","error_description":"bad ` + secret + `"}`, want: revoke.Permanent,
			errHas: []string{`idp: the token endpoint refused the client credentials; check revoke.adapter.client_id ("cid", a test client)`, "HTTP 401: invalid_client: bad [redacted]"}},
		{name: "400", status: 400, body: `{"error":"unauthorized_client"}`, want: revoke.Permanent, errHas: []string{"refused the client credentials", "HTTP 400: unauthorized_client"}},
		{name: "Refused describes", status: 404, body: "no", want: revoke.Permanent, errHas: []string{"idp: not here"}},
		{name: "Refused keeps the default", status: 403, body: `{"error":"access_denied"}`, want: revoke.Permanent,
			errHas: []string{"idp: obtaining an access token: POST ", "HTTP 403: access_denied"}},
		{name: "409 is no token", status: 409, want: revoke.Permanent, errHas: []string{"HTTP 409"}},
		{name: "503", status: 503, header: http.Header{"Retry-After": {"2"}}, body: "echo " + secret, want: revoke.Retry, retryAfter: 2 * time.Second,
			errHas: []string{"idp: obtaining an access token: POST ", "HTTP 503: echo [redacted]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = append(got, r.Method, r.Header.Get("Content-Type"), r.Header.Get("Accept"), string(b))
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			c := &revoke.ClientCredentials{Name: "idp", TokenURL: srv.URL + "/token", ClientID: "cid", Secret: secret, Client: "a test client",
				Check: "revoke.adapter.url", Refused: func(status int, err error) error {
					if status == http.StatusNotFound {
						return errors.New("idp: not here")
					}
					return nil
				}}
			tok, expiresIn, r := c.Fetch(context.Background(), "text/plain", []byte("grant "+secret), func(req *http.Request) (revoke.Result, []byte) {
				r, body, _ := revoke.Do(srv.Client(), req)
				return r, body
			})
			if strings.Join(got, "|") != "POST|text/plain|application/json|grant "+secret {
				t.Fatalf("request = %q", got)
			}
			if r.Outcome != tc.want || tok != tc.token || expiresIn != tc.expiresIn || r.RetryAfter != tc.retryAfter || (r.Err == nil) != (tc.want == revoke.Done) {
				t.Fatalf("Fetch = %q, %v, %+v; want %v, token %q, expires in %v, retry-after %v", tok, expiresIn, r, tc.want, tc.token, tc.expiresIn, tc.retryAfter)
			}
			if tc.want != revoke.Done && (r.Note != "" || r.Status != tc.status) {
				t.Fatalf("failure = %+v, want status %d without a note", r, tc.status)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(r.Err.Error(), s) {
					t.Errorf("error %q does not mention %q", r.Err, s)
				}
			}
			if r.Err != nil && strings.Contains(r.Err.Error(), secret) {
				t.Fatalf("error leaks the secret: %v", r.Err)
			}
		})
	}
}

func TestTokenBearerRequest(t *testing.T) {
	req, err := revoke.NewBearerRequest(context.Background(), "idp", http.MethodDelete, "https://api.example.com/x", "tok")
	if err != nil || req.Method != http.MethodDelete || req.Header.Get("Authorization") != "Bearer tok" || req.Header.Get("Accept") != "application/json" {
		t.Fatalf("NewBearerRequest = %+v, %v", req, err)
	}
	if req, _ := revoke.NewBearerRequest(context.Background(), "idp", http.MethodDelete, "https://api.example.com/x", ""); req.Header.Get("Authorization") != "" {
		t.Fatalf("no token, yet Authorization = %q", req.Header.Get("Authorization"))
	}
	if _, err := revoke.NewBearerRequest(context.Background(), "idp", "BAD METHOD", "https://api.example.com/x", "tok"); err == nil || !strings.HasPrefix(err.Error(), "idp: ") {
		t.Fatalf("bad method: err = %v, want one prefixed idp:", err)
	}
}
