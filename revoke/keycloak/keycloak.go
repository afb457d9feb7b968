// Package keycloak is the revocation adapter for the Keycloak Admin REST
// API. revoke.adapter.url is the server root (https://kc.example.com, or
// https://kc.example.com/auth on Keycloak before 17) and
// revoke.adapter.realm the realm whose sessions are revoked.
//
// Authentication: the client-credentials grant, POST
// {url}/realms/{realm}/protocol/openid-connect/token with the form
// grant_type=client_credentials, client_id (revoke.adapter.client_id) and
// client_secret (read from revoke.adapter.client_secret_file). The access
// token is cached, renewed 30 s before it expires (or half-way through a
// shorter lifetime), and renewed once more when the Admin API answers 401.
// Only one renewal runs at a time.
//
// Endpoints, per intent scope:
//
//   - session: DELETE {url}/admin/realms/{realm}/sessions/{session_id}
//     ("Remove a specific user session"): 204 when removed, 404 when the
//     session is unknown or already gone, which counts as done.
//   - family: Keycloak has no refresh-token families that can be revoked on
//     their own; a family maps to the user session its refresh tokens
//     belong to: the intent's SessionID when set, else its FamilyID taken as
//     a session id (the refresh token's sid claim), removed with the same
//     DELETE. Removing the session invalidates every refresh token issued
//     in it.
//   - user: POST {url}/admin/realms/{realm}/users/{user_id}/logout ("Remove
//     all user sessions associated with the user"): 204; 404 when there is
//     no such user, which counts as done. It also sets the user's
//     not-before time, so every refresh token issued before it, offline
//     tokens included, is refused from then on.
//
// Permissions: a confidential OpenID Connect client in the realm with
// client authentication on, "Service accounts roles" enabled, and the
// client role manage-users of the realm-management client assigned to its
// service account.
//
// What the API cannot do: revoke one refresh-token family without the rest
// of its session; remove an offline session by session id (the DELETE
// removes the online session; offline tokens are cut only by the user
// scope's not-before); recall access tokens already issued: they are
// self-contained JWTs and stay valid for offline verifiers until they
// expire (introspection reports them inactive once the session is gone).
package keycloak

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

// Adapter removes Keycloak user sessions through the Admin REST API; it is safe for concurrent use.
type Adapter struct {
	admin    string // {url}/admin/realms/{realm}
	endpoint string
	grant    revoke.ClientCredentials
	client   *http.Client
	now      func() time.Time // the token cache's clock
	tokens   *revoke.TokenCache
}

// New reads the client secret (revoke.adapter.client_secret_file) and
// returns an Adapter for cfg.Realm at cfg.URL using client (nil: a client
// built from cfg by revoke.NewHTTPClient). No token is fetched until the
// first revocation.
func New(cfg revoke.AdapterConfig, client *http.Client) (*Adapter, error) {
	base := strings.TrimRight(cfg.URL, "/")
	switch {
	case base == "":
		return nil, fmt.Errorf("revoke.adapter.url: must be set to the Keycloak server root")
	case cfg.Realm == "":
		return nil, fmt.Errorf("revoke.adapter.realm: must be set for keycloak")
	case cfg.ClientID == "":
		return nil, fmt.Errorf("revoke.adapter.client_id: must be set for keycloak (a confidential client with a service account)")
	case cfg.ClientSecretFile == "":
		return nil, fmt.Errorf("revoke.adapter.client_secret_file: must be set for keycloak")
	}
	secret, err := revoke.ReadSecretFile("revoke.adapter.client_secret_file", cfg.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	if client, err = revoke.DefaultHTTPClient(client, cfg); err != nil {
		return nil, err
	}
	realm := url.PathEscape(cfg.Realm)
	a := &Adapter{
		admin:    base + "/admin/realms/" + realm,
		endpoint: revoke.EndpointOf(base),
		grant: revoke.ClientCredentials{
			Name:     "keycloak",
			TokenURL: base + "/realms/" + realm + "/protocol/openid-connect/token",
			ClientID: cfg.ClientID,
			Secret:   secret,
			Client:   "a confidential client with service accounts enabled",
			Check:    "revoke.adapter.url (the server root) and revoke.adapter.realm",
		},
		client: client,
		now:    time.Now,
	}
	a.grant.Refused = func(status int, _ error) error {
		if status != http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("keycloak: token endpoint %s not found (404); check %s", a.grant.TokenURL, a.grant.Check)
	}
	a.tokens = revoke.NewTokenCache("keycloak", a.fetch, func() time.Time { return a.now() })
	return a, nil
}

// Endpoint implements revoke.Adapter.
func (a *Adapter) Endpoint() string { return a.endpoint }

// Revoke implements revoke.Adapter: one Admin API call, classified by
// revoke.Classify, preceded by a token request when the cached token has
// expired, and repeated once with a new token if the first is refused (401).
func (a *Adapter) Revoke(ctx context.Context, in *revoke.Intent) revoke.Result {
	method, path, err := Route(in)
	if err != nil {
		return revoke.Result{Outcome: revoke.Permanent, Err: err}
	}
	return a.call(ctx, method, a.admin+path)
}

// Route returns the Admin API method and path (under
// /admin/realms/{realm}, already escaped) that revokes in's subject.
func Route(in *revoke.Intent) (method, path string, err error) {
	switch in.Scope {
	case revoke.ScopeSession:
		if in.SessionID == "" {
			return "", "", fmt.Errorf("keycloak: intent %s: scope session without a session id", in.ID)
		}
		return http.MethodDelete, "/sessions/" + url.PathEscape(in.SessionID), nil
	case revoke.ScopeFamily:
		id := in.SessionID
		if id == "" {
			id = in.FamilyID
		}
		if id == "" {
			return "", "", fmt.Errorf("keycloak: intent %s: scope family without a session or family id", in.ID)
		}
		return http.MethodDelete, "/sessions/" + url.PathEscape(id), nil
	case revoke.ScopeUser:
		if in.UserID == "" {
			return "", "", fmt.Errorf("keycloak: intent %s: scope user without a user id", in.ID)
		}
		return http.MethodPost, "/users/" + url.PathEscape(in.UserID) + "/logout", nil
	}
	return "", "", fmt.Errorf("keycloak: intent %s: unknown scope %q", in.ID, in.Scope)
}

// call sends one authorized request; a 401 drops the token and, once,
// sends it again with a fresh one.
func (a *Adapter) call(ctx context.Context, method, u string) revoke.Result {
	return a.tokens.Call(ctx, nil, func(tok string) revoke.Result {
		req, err := revoke.NewBearerRequest(ctx, "keycloak", method, u, tok)
		if err != nil {
			return revoke.Result{Outcome: revoke.Permanent, Err: err}
		}
		r, _, _ := revoke.Do(a.client, req)
		r.Err = revoke.ScrubError(r.Err, tok, a.grant.Secret)
		if r.Status == http.StatusForbidden {
			r.Err = fmt.Errorf("%w (the service account of revoke.adapter.client_id %q needs the realm-management role manage-users)", r.Err, a.grant.ClientID)
		}
		return r
	})
}

// fetch is the token cache's revoke.TokenFetcher: the client-credentials
// grant, form-encoded.
func (a *Adapter) fetch(ctx context.Context) (string, time.Duration, revoke.Result) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.grant.ClientID}, "client_secret": {a.grant.Secret}}
	return a.grant.Fetch(ctx, "application/x-www-form-urlencoded", []byte(form.Encode()), func(req *http.Request) (revoke.Result, []byte) {
		r, body, _ := revoke.Do(a.client, req)
		return r, body
	})
}
