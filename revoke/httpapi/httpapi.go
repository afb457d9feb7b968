// Package httpapi is the generic revocation adapter: it speaks vigil's own
// session API (DESIGN.md §6), POST {base_url}/revocations with an
// Idempotency-Key, an optional bearer token and an optional HMAC
// signature of the body. The simulator's session API speaks it too.
package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

// Path is the route revocations are posted to, under the base URL.
const Path = "/revocations"

// request is the JSON body of POST /revocations.
type request struct {
	ID          string    `json:"id"`
	Scope       string    `json:"scope"`
	Tenant      string    `json:"tenant"`
	UserID      string    `json:"user_id"`
	SessionID   string    `json:"session_id"`
	FamilyID    string    `json:"family_id"`
	Reason      string    `json:"reason"`
	AnomalyID   string    `json:"anomaly_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// Adapter posts revocations to one session API. It is safe for concurrent use.
type Adapter struct {
	url      string
	endpoint string
	token    string
	hmacKey  []byte
	client   *http.Client
}

// New reads the adapter's secrets (token_file, hmac_key_file) and returns
// an Adapter posting to cfg.URL + /revocations with client.
func New(cfg revoke.AdapterConfig, client *http.Client) (*Adapter, error) {
	token, err := revoke.ReadSecretFile("revoke.adapter.token_file", cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	key, err := revoke.ReadSecretFile("revoke.adapter.hmac_key_file", cfg.HMACKeyFile)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.URL, "/")
	a := &Adapter{url: base + Path, endpoint: revoke.EndpointOf(base), token: token, client: client}
	if key != "" {
		a.hmacKey = []byte(key)
	}
	return a, nil
}

// Endpoint implements revoke.Adapter.
func (a *Adapter) Endpoint() string { return a.endpoint }

// Body returns the exact request body sent for in; it depends only on the
// intent, so every retry carries the same bytes (and the same signature).
func Body(in *revoke.Intent) ([]byte, error) {
	return json.Marshal(request{
		ID: in.ID, Scope: in.Scope, Tenant: in.Tenant, UserID: in.UserID, SessionID: in.SessionID, FamilyID: in.FamilyID,
		Reason: in.Reason, AnomalyID: in.AnomalyID, RequestedAt: in.RequestedAt.UTC(),
	})
}

// Revoke implements revoke.Adapter: one POST, classified by revoke.Classify.
func (a *Adapter) Revoke(ctx context.Context, in *revoke.Intent) revoke.Result {
	body, err := Body(in)
	if err != nil {
		return revoke.Result{Outcome: revoke.Permanent, Err: fmt.Errorf("encoding request: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return revoke.Result{Outcome: revoke.Permanent, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", in.ID)
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if a.hmacKey != nil {
		m := hmac.New(sha256.New, a.hmacKey)
		m.Write(body)
		req.Header.Set("X-Vigil-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	r, _, _ := revoke.Do(a.client, req)
	r.Err = revoke.ScrubError(r.Err, a.token, string(a.hmacKey)) // an echoing proxy must not leak them into logs
	return r
}
