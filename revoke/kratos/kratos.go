// Package kratos is the revocation adapter for the Ory Kratos admin API
// (self-hosted Kratos or Ory Network). revoke.adapter.url is the admin
// endpoint: the Kratos admin port (e.g. http://kratos:4434) or the Ory
// Network project URL (https://PROJECT.projects.oryapis.com).
//
// Endpoints, per intent scope:
//
//   - session: DELETE {url}/admin/sessions/{session_id} ("Deactivate a
//     Session", operation disableSession): 204 when deactivated, 404 when
//     the session is unknown or already gone, which counts as done.
//   - family: Kratos has no refresh tokens and so no refresh-token
//     families. A family maps to the Kratos session it belongs to: the
//     intent's SessionID when set, else its FamilyID taken as a session
//     id, deactivated with the same DELETE /admin/sessions/{id}.
//   - user: DELETE {url}/admin/identities/{user_id}/sessions ("Delete &
//     Invalidate an Identity's Sessions", operation
//     deleteIdentitySessions): 204 when deleted; 404 when the identity has
//     no sessions or does not exist, which counts as done.
//
// Permissions: the Kratos admin API has no authorization of its own; it
// must only be reachable by trusted callers (a private network, a proxy).
// On Ory Network set revoke.adapter.token_file to a project API key
// (ory_pat_…); it is sent as "Authorization: Bearer <key>".
//
// What the API cannot do: revoke a single refresh-token family (there is
// none; the whole session is deactivated), and recall session tokens or
// tokenized JWTs already handed to applications that verify them offline:
// those stay valid until they expire, while whoami checks fail at once.
// Deactivation keeps the session record (active: false), so the
// session's history stays inspectable.
package kratos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/vigilhq/vigil/revoke"
)

// Adapter deactivates Kratos sessions through the admin API; it is safe for concurrent use.
type Adapter struct {
	base     string
	endpoint string
	token    string
	client   *http.Client
}

// New reads the optional API key (revoke.adapter.token_file) and returns an
// Adapter calling the admin API at cfg.URL with client (nil: a client built
// from cfg by revoke.NewHTTPClient).
func New(cfg revoke.AdapterConfig, client *http.Client) (*Adapter, error) {
	base := strings.TrimRight(cfg.URL, "/")
	if base == "" {
		return nil, fmt.Errorf("revoke.adapter.url: must be set to the Kratos admin API URL")
	}
	token, err := revoke.ReadSecretFile("revoke.adapter.token_file", cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	if client, err = revoke.DefaultHTTPClient(client, cfg); err != nil {
		return nil, err
	}
	return &Adapter{base: base, endpoint: revoke.EndpointOf(base), token: token, client: client}, nil
}

// Endpoint implements revoke.Adapter.
func (a *Adapter) Endpoint() string { return a.endpoint }

// Revoke implements revoke.Adapter: one DELETE, classified by revoke.Classify.
func (a *Adapter) Revoke(ctx context.Context, in *revoke.Intent) revoke.Result {
	path, err := Path(in)
	if err != nil {
		return revoke.Result{Outcome: revoke.Permanent, Err: err}
	}
	req, err := revoke.NewBearerRequest(ctx, "kratos", http.MethodDelete, a.base+path, a.token)
	if err != nil {
		return revoke.Result{Outcome: revoke.Permanent, Err: err}
	}
	r, _, _ := revoke.Do(a.client, req)
	switch r.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		if a.token != "" {
			r.Err = fmt.Errorf("%w (the API key in revoke.adapter.token_file was refused)", r.Err)
		} else {
			r.Err = fmt.Errorf("%w (the admin API wants credentials: set revoke.adapter.token_file to an Ory API key)", r.Err)
		}
	}
	r.Err = revoke.ScrubError(r.Err, a.token)
	return r
}

// Path returns the admin API path (already escaped) that revokes in's
// subject: /admin/sessions/{id} for scopes session and family,
// /admin/identities/{id}/sessions for scope user.
func Path(in *revoke.Intent) (string, error) {
	switch in.Scope {
	case revoke.ScopeSession:
		if in.SessionID == "" {
			return "", fmt.Errorf("kratos: intent %s: scope session without a session id", in.ID)
		}
		return "/admin/sessions/" + url.PathEscape(in.SessionID), nil
	case revoke.ScopeFamily:
		id := in.SessionID
		if id == "" {
			id = in.FamilyID
		}
		if id == "" {
			return "", fmt.Errorf("kratos: intent %s: scope family without a session or family id", in.ID)
		}
		return "/admin/sessions/" + url.PathEscape(id), nil
	case revoke.ScopeUser:
		if in.UserID == "" {
			return "", fmt.Errorf("kratos: intent %s: scope user without a user (identity) id", in.ID)
		}
		return "/admin/identities/" + url.PathEscape(in.UserID) + "/sessions", nil
	}
	return "", fmt.Errorf("kratos: intent %s: unknown scope %q", in.ID, in.Scope)
}
