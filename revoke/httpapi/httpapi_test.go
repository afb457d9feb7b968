package httpapi_test

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/httpapi"
	"github.com/vigilhq/vigil/sim/sessionapi"
)

type target struct {
	mu   sync.Mutex
	seen []sessionapi.Request
}

func (t *target) Revoke(r sessionapi.Request, _ time.Time) (sessionapi.Outcome, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen = append(t.seen, r)
	return sessionapi.Revoked, true
}

func secretFile(t *testing.T, name, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestContract posts to vigil's own session API (the simulator's
// implementation of DESIGN.md §6) with a bearer token and an HMAC
// signature: accepted once, replayed under the same key, refused with the
// wrong token (permanent, naming no secret).
func TestContract(t *testing.T) {
	const token, key = "s3cret-token-value", "hmac-key-value"
	cfg := sessionapi.DefaultConfig()
	cfg.BearerToken, cfg.HMACKey = token, key
	tg := &target{}
	srv, err := sessionapi.New(cfg, tg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	ac := revoke.AdapterConfig{Kind: revoke.AdapterHTTP, URL: "http://" + srv.Addr() + "/", AllowHTTP: true, Timeout: 5 * time.Second,
		TokenFile: secretFile(t, "token", token), HMACKeyFile: secretFile(t, "hmac", key)}
	client, err := revoke.NewHTTPClient(ac, 2)
	if err != nil {
		t.Fatal(err)
	}
	a, err := httpapi.New(ac, client)
	if err != nil {
		t.Fatal(err)
	}
	if a.Endpoint() != "http://"+srv.Addr() {
		t.Errorf("Endpoint = %q", a.Endpoint())
	}
	in := &revoke.Intent{ID: "act-1", Action: revoke.RevokeFamily, Scope: revoke.ScopeFamily, Tenant: "acme", UserID: "u1", SessionID: "s1", FamilyID: "f1",
		Reason: "token_reuse", AnomalyID: "an-1", RequestedAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	for i := range 2 {
		r := a.Revoke(context.Background(), in)
		if r.Outcome != revoke.Done || r.Status != 201 {
			t.Fatalf("attempt %d: %+v", i, r)
		}
	}
	if st := srv.Stats(); st.Revoked != 1 || st.Replayed != 1 || st.KeyConflicts != 0 {
		t.Errorf("stats %+v: want one revocation and one replay of the same key and body", st)
	}
	if len(tg.seen) != 1 || tg.seen[0].FamilyID != "f1" || tg.seen[0].Scope != "family" || tg.seen[0].AnomalyID != "an-1" || tg.seen[0].ID != "act-1" {
		t.Errorf("the service saw %+v", tg.seen)
	}

	ac.TokenFile = secretFile(t, "wrong", "wrong-token-value")
	bad, err := httpapi.New(ac, client)
	if err != nil {
		t.Fatal(err)
	}
	r := bad.Revoke(context.Background(), &revoke.Intent{ID: "act-2", Action: revoke.RevokeSession, Scope: revoke.ScopeSession, SessionID: "s2"})
	if r.Outcome != revoke.Permanent || r.Status != 401 || r.Err == nil {
		t.Fatalf("wrong token: %+v", r)
	}
	for _, s := range []string{token, key, "wrong-token-value"} {
		if strings.Contains(r.Err.Error(), s) {
			t.Errorf("error %q contains a secret", r.Err)
		}
	}
	if _, err := httpapi.New(revoke.AdapterConfig{TokenFile: filepath.Join(t.TempDir(), "missing")}, client); err == nil || !strings.Contains(err.Error(), "revoke.adapter.token_file") {
		t.Errorf("missing token file: %v", err)
	}
}

// TestMutualTLS: over https to a session API that requires a client
// certificate signed by its CA, the adapter built from
// revoke.adapter.tls (custom CA, client certificate) revokes; without the
// client certificate, or without trusting the server's CA, the attempt
// fails with an error that says why and names no secret.
func TestMutualTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	const token = "mtls-token-value"
	cfg := sessionapi.DefaultConfig()
	cfg.BearerToken = token
	api, err := sessionapi.New(cfg, &target{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.Handler())
	srv.TLS = certs.Server.Clone()
	srv.TLS.ClientAuth, srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, certs.Pool
	srv.StartTLS()
	defer srv.Close()

	in := &revoke.Intent{ID: "act-m", Action: revoke.RevokeSession, Scope: revoke.ScopeSession, UserID: "u1", SessionID: "s1",
		Reason: "session_hijack", AnomalyID: "an-m", RequestedAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	tokenFile := secretFile(t, "token", token)
	f := func(name string, tc revoke.TLSConfig, wantOutcome revoke.Outcome, wantErr string) {
		t.Helper()
		ac := revoke.AdapterConfig{Kind: revoke.AdapterHTTP, URL: srv.URL, Timeout: 5 * time.Second, TokenFile: tokenFile, TLS: tc}
		client, err := revoke.NewHTTPClient(ac, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, err := httpapi.New(ac, client)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := a.Revoke(context.Background(), in)
		msg := ""
		if r.Err != nil {
			msg = r.Err.Error()
		}
		if r.Outcome != wantOutcome || (wantErr != "" && !strings.Contains(msg, wantErr)) {
			t.Errorf("%s: %v (%s), want outcome %v with an error saying %q", name, r.Outcome, msg, wantOutcome, wantErr)
		}
		if strings.Contains(msg, token) {
			t.Errorf("%s: the error shows the token: %s", name, msg)
		}
		t.Logf("%s: %v %s", name, r.Outcome, msg)
	}
	f("client certificate and CA", revoke.TLSConfig{CAFile: certs.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, revoke.Done, "")
	// A handshake failure is a network error: retried until revoke.deadline
	// (a certificate being rotated recovers), then recorded failed with it.
	f("no client certificate", revoke.TLSConfig{CAFile: certs.CAFile}, revoke.Retry, "tls: certificate required")
	f("server's CA not trusted", revoke.TLSConfig{CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, revoke.Retry, "certificate signed by unknown authority")
}
