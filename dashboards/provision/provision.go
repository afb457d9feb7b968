// Package provision pushes vigil's folder, datasources and dashboards to a
// running Grafana through its HTTP API, idempotently: every object is read
// first and written only when it is missing or differs, so a second push of
// the same input makes no write at all (like `terraform apply`).
//
// All calls go through github.com/grafana/grafana-openapi-client-go. Nothing
// is logged; the service-account token and datasource secrets never appear
// in an error.
package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	goapi "github.com/grafana/grafana-openapi-client-go/client"
	"github.com/grafana/grafana-openapi-client-go/client/dashboards"
	"github.com/grafana/grafana-openapi-client-go/client/datasources"
	"github.com/grafana/grafana-openapi-client-go/client/folders"
	"github.com/grafana/grafana-openapi-client-go/models"
)

// Target says where and as whom to push.
type Target struct {
	// URL is Grafana's base URL, e.g. https://grafana:3000; it may end in a
	// sub-path (https://example.com/grafana) when Grafana serves from one.
	URL string
	// Token is a service-account token, sent as a Bearer token; it is never
	// logged and never part of an error.
	Token string
	// FolderUID and FolderTitle name the folder the dashboards go in: it is
	// created when missing, and its title is updated when it differs.
	FolderUID, FolderTitle string
	// RewriteSecrets writes every datasource that has SecureJSONData even
	// when nothing else differs: after rotating a password, since Grafana
	// never returns secrets to compare.
	RewriteSecrets bool
	// HTTPClient, optional, carries TLS settings and timeouts; the default
	// is a client with a 30s timeout over http.DefaultTransport.
	HTTPClient *http.Client
}

// Datasource is a datasource to create or update, identified by its UID.
type Datasource struct {
	// UID, Name, Type and URL are Grafana's fields of the same names.
	UID, Name, Type, URL string
	// Access is "proxy" (the default when empty) or "direct".
	Access string
	// JSONData is the datasource's plain settings (jsonData).
	JSONData map[string]any
	// SecureJSONData is the datasource's secrets (secureJsonData, e.g. a
	// password): sent to Grafana, never logged, never in an error.
	SecureJSONData map[string]string
}

// Dashboard is one dashboard model (the JSON Grafana stores), identified by
// its "uid" field.
type Dashboard struct {
	// UID and Title, when set, must agree with the model's "uid" and
	// "title" (they fill them in when the model lacks them).
	UID, Title string
	// JSON is the dashboard model, a JSON object.
	JSON []byte
}

// What Push did to one object; the values of Result's fields and maps.
const (
	Created   = "created"   // it did not exist and was created
	Updated   = "updated"   // it existed and differed, and was written
	Unchanged = "unchanged" // it existed as wanted: nothing was written
)

// Result reports what a push did: for each object Created, Updated or
// Unchanged.
type Result struct {
	// Folder is what happened to Target's folder.
	Folder string
	// Datasources and Dashboards map a UID to what happened to it.
	Datasources map[string]string
	Dashboards  map[string]string
}

// Push makes Grafana hold the folder, datasources and dashboards, in that
// order, and reports what it did. It stops at the first error and returns
// the Result so far with it.
//
// Folder: read by UID, created when missing (404), its title updated when
// it differs.
//
// Datasources: read by UID, created when missing; updated (PUT, with the
// stored version) when name, type, URL, access or jsonData differ, or when
// a key of SecureJSONData is not set in Grafana (secureJsonFields). Grafana
// never returns secret values, so a changed secret value alone is not
// detected: the datasource is then reported Unchanged and not written (this
// keeps a second push free of writes) unless Target.RewriteSecrets is set.
// When a datasource is written, all of
// SecureJSONData is sent; secrets Grafana holds under other keys are kept.
//
// Dashboards: read by UID, created when missing; otherwise the stored model
// is compared with ours ignoring "id" and "version" (assigned by Grafana on
// every save), and the dashboard's folder with Target's. When equal nothing
// is written; otherwise the model is saved with the stored id and version
// and overwrite off, so an edit made in between is not overwritten blindly:
// Grafana answers 412 and Push reads the dashboard again and retries once.
//
// Errors start with "grafana: <URL>:", name the object and quote Grafana's
// message; a 401 or 403 says "authentication refused (HTTP 401)" and points
// at the token. The token and secret values are cut out of every error.
func Push(ctx context.Context, t Target, ds []Datasource, dbs []Dashboard) (Result, error) {
	res := Result{Datasources: map[string]string{}, Dashboards: map[string]string{}}
	wants, err := check(t, ds, dbs)
	if err != nil {
		return res, err
	}
	p, err := newPusher(ctx, t, ds)
	if err != nil {
		return res, err
	}
	p.rewriteSecrets = t.RewriteSecrets
	if res.Folder, err = p.folder(t.FolderUID, t.FolderTitle); err != nil {
		return res, err
	}
	for _, d := range ds {
		if res.Datasources[d.UID], err = p.datasource(d); err != nil {
			delete(res.Datasources, d.UID)
			return res, err
		}
	}
	for _, m := range wants {
		uid := m["uid"].(string)
		if res.Dashboards[uid], err = p.dashboard(uid, m, t.FolderUID); err != nil {
			delete(res.Dashboards, uid)
			return res, err
		}
	}
	return res, nil
}

// check validates the input before any call and returns the dashboard
// models, parsed, with "uid" and "title" filled in.
func check(t Target, ds []Datasource, dbs []Dashboard) ([]map[string]any, error) {
	if t.FolderUID == "" || t.FolderTitle == "" {
		return nil, errors.New("provision: the folder's UID and title are required")
	}
	seen := map[string]bool{}
	for i, d := range ds {
		if d.UID == "" || d.Name == "" || d.Type == "" {
			return nil, fmt.Errorf("provision: datasource %d (%q): UID, name and type are required", i, d.UID)
		}
		if seen[d.UID] {
			return nil, fmt.Errorf("provision: datasource %q given twice", d.UID)
		}
		seen[d.UID] = true
	}
	clear(seen)
	out := make([]map[string]any, 0, len(dbs))
	for i, d := range dbs {
		var m map[string]any
		if err := json.Unmarshal(d.JSON, &m); err != nil || m == nil {
			return nil, fmt.Errorf("provision: dashboard %d (%q): the model is not a JSON object", i, d.UID)
		}
		for _, f := range [...]struct{ key, given string }{{"uid", d.UID}, {"title", d.Title}} {
			s, _ := m[f.key].(string)
			switch {
			case s == "" && f.given != "":
				m[f.key] = f.given
			case s == "" || (f.given != "" && s != f.given):
				return nil, fmt.Errorf("provision: dashboard %d (%q): the model's %s is %q, want %q (non-empty)", i, d.UID, f.key, s, f.given)
			}
		}
		uid := m["uid"].(string)
		if seen[uid] {
			return nil, fmt.Errorf("provision: dashboard %q given twice", uid)
		}
		seen[uid] = true
		out = append(out, m)
	}
	return out, nil
}

// pusher makes the calls of one Push, one at a time.
type pusher struct {
	ctx  context.Context
	api  *goapi.GrafanaHTTPAPI
	base string   // Target.URL without credentials, for errors
	hide []string // the token and secret values, cut out of every error

	rewriteSecrets bool // Target.RewriteSecrets

	// last is the last HTTP response's status and, for an error status,
	// its body (read ahead, so Grafana's message outlives the connection).
	last struct {
		code  int
		ctype string
		body  []byte
	}
}

func newPusher(ctx context.Context, t Target, ds []Datasource) (*pusher, error) {
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("provision: the Grafana URL must be http(s)://host[:port][/sub-path]")
	}
	hc := t.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	cfg := &goapi.TransportConfig{
		Host:     u.Host,
		BasePath: strings.TrimSuffix(u.Path, "/") + goapi.DefaultBasePath,
		Schemes:  []string{u.Scheme},
		APIKey:   t.Token,
		Client:   hc,
	}
	p := &pusher{ctx: ctx, base: strings.TrimSuffix(u.Redacted(), "/")}
	if t.Token != "" {
		p.hide = append(p.hide, t.Token)
	}
	for _, d := range ds {
		for _, v := range d.SecureJSONData {
			if v != "" {
				p.hide = append(p.hide, v)
			}
		}
	}
	// Longest first, so a secret containing another is cut out whole.
	slices.SortFunc(p.hide, func(a, b string) int { return len(b) - len(a) })

	// The transport is built here rather than by goapi.NewHTTPClientWithConfig
	// because that one assigns http.DefaultTransport.TLSClientConfig, a
	// process-wide write (a data race with any other client, and it drops a
	// TLS config set there); it also lets us read error bodies ahead.
	rt := httptransport.NewWithClient(cfg.Host, cfg.BasePath, cfg.Schemes, cfg.Client)
	rt.Debug = false // DEBUG in the environment would dump requests: the token and secrets
	if cfg.APIKey != "" {
		rt.DefaultAuthentication = httptransport.BearerToken(cfg.APIKey)
	}
	rt.SetResponseReader(p.response)
	p.api = goapi.New(rt, cfg, strfmt.Default)
	return p, nil
}

// response records each HTTP response for errors; an error status's body is
// read ahead (at most 1 MiB) and served from memory to the client.
func (p *pusher) response(r *http.Response) runtime.ClientResponse {
	p.last.code, p.last.ctype, p.last.body = r.StatusCode, r.Header.Get("Content-Type"), nil
	if r.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		p.last.body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return response{r}
}

// response is the go-openapi runtime's view of an *http.Response.
type response struct{ r *http.Response }

func (x response) Code() int                    { return x.r.StatusCode }
func (x response) Message() string              { return x.r.Status }
func (x response) GetHeader(n string) string    { return x.r.Header.Get(n) }
func (x response) GetHeaders(n string) []string { return x.r.Header.Values(n) }
func (x response) Body() io.ReadCloser          { return x.r.Body }

// call runs one API call and returns the HTTP status it got (0 when no
// response arrived) and its error.
func (p *pusher) call(f func() error) (int, error) {
	p.last.code, p.last.ctype, p.last.body = 0, "", nil
	err := f()
	return p.last.code, err
}

// grafanaError is the body of Grafana's API errors.
type grafanaError struct {
	Message string `json:"message"`
	Status  string `json:"status"` // e.g. "version-mismatch", "name-exists"
}

// apiError returns the last response's Grafana error body, and whether it
// is one (an error status from a proxy or a wrong URL is not).
func (p *pusher) apiError() (grafanaError, bool) {
	var e grafanaError
	ok := strings.Contains(p.last.ctype, "json") && json.Unmarshal(p.last.body, &e) == nil && e.Message != ""
	return e, ok
}

// notFound says whether the call just made got Grafana's own 404.
func (p *pusher) notFound(code int) bool {
	_, ok := p.apiError()
	return code == http.StatusNotFound && ok
}

// fail turns the error of the call just made (doing says what it did)
// into the error Push returns.
func (p *pusher) fail(doing string, code int, err error) error {
	e, grafana := p.apiError()
	switch {
	case code == 0: // no HTTP response: network, TLS, timeout, cancelled
		return p.errorf(err, "%s: %v", doing, err)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		said := ""
		if grafana {
			said = fmt.Sprintf(" (%q)", e.Message)
		}
		return p.errorf(nil, "authentication refused (HTTP %d) %s%s: check --token-file "+
			"(a service-account token with Editor or folder/datasource write rights)", code, doing, said)
	case !grafana:
		ct := p.last.ctype
		if ct == "" {
			ct = "no Content-Type"
		}
		return p.errorf(nil, "%s: HTTP %d and not a Grafana API answer (%s): check the URL", doing, code, ct)
	case e.Status != "":
		return p.errorf(nil, "%s: HTTP %d (%s): %q", doing, code, e.Status, e.Message)
	default:
		return p.errorf(nil, "%s: HTTP %d: %q", doing, code, e.Message)
	}
}

// errorf formats an error that names Grafana, with the token and secrets
// cut out; it wraps cause (for errors.Is, e.g. context.Canceled).
func (p *pusher) errorf(cause error, format string, args ...any) error {
	msg := "grafana: " + p.base + ": " + fmt.Sprintf(format, args...)
	for _, s := range p.hide {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return &pushError{msg, cause}
}

type pushError struct {
	msg   string
	cause error
}

func (e *pushError) Error() string { return e.msg }
func (e *pushError) Unwrap() error { return e.cause }

func (p *pusher) folder(uid, title string) (string, error) {
	var got *folders.GetFolderByUIDOK
	code, err := p.call(func() (err error) {
		got, err = p.api.Folders.GetFolderByUIDWithParams(folders.NewGetFolderByUIDParamsWithContext(p.ctx).WithFolderUID(uid))
		return err
	})
	switch {
	case p.notFound(code):
		code, err = p.call(func() error {
			_, err := p.api.Folders.CreateFolderWithParams(folders.NewCreateFolderParamsWithContext(p.ctx).
				WithBody(&models.CreateFolderCommand{UID: uid, Title: title}))
			return err
		})
		if err != nil {
			return "", p.fail(fmt.Sprintf("creating folder %q", uid), code, err)
		}
		return Created, nil
	case err != nil:
		return "", p.fail(fmt.Sprintf("reading folder %q", uid), code, err)
	case got.Payload.Title == title:
		return Unchanged, nil
	}
	code, err = p.call(func() error {
		_, err := p.api.Folders.UpdateFolderWithParams(folders.NewUpdateFolderParamsWithContext(p.ctx).WithFolderUID(uid).
			WithBody(&models.UpdateFolderCommand{Title: title, Version: got.Payload.Version, Overwrite: false}))
		return err
	})
	if err != nil {
		return "", p.fail(fmt.Sprintf("updating folder %q's title", uid), code, err)
	}
	return Updated, nil
}

func (p *pusher) datasource(d Datasource) (string, error) {
	access := d.Access
	if access == "" {
		access = "proxy"
	}
	var got *datasources.GetDataSourceByUIDOK
	code, err := p.call(func() (err error) {
		got, err = p.api.Datasources.GetDataSourceByUIDWithParams(datasources.NewGetDataSourceByUIDParamsWithContext(p.ctx).WithUID(d.UID))
		return err
	})
	switch {
	case p.notFound(code):
		code, err = p.call(func() error {
			_, err := p.api.Datasources.AddDataSourceWithParams(datasources.NewAddDataSourceParamsWithContext(p.ctx).
				WithBody(&models.AddDataSourceCommand{
					UID: d.UID, Name: d.Name, Type: d.Type, URL: d.URL, Access: models.DsAccess(access),
					JSONData: d.JSONData, SecureJSONData: d.SecureJSONData,
				}))
			return err
		})
		if err != nil {
			return "", p.fail(fmt.Sprintf("creating datasource %q", d.UID), code, err)
		}
		return Created, nil
	case err != nil:
		return "", p.fail(fmt.Sprintf("reading datasource %q", d.UID), code, err)
	}
	cur := got.Payload
	same := cur.Name == d.Name && cur.Type == d.Type && cur.URL == d.URL && string(cur.Access) == access &&
		sameJSON(cur.JSONData, d.JSONData)
	for k := range d.SecureJSONData {
		same = same && cur.SecureJSONFields[k] && !p.rewriteSecrets
	}
	if same {
		return Unchanged, nil
	}
	code, err = p.call(func() error {
		_, err := p.api.Datasources.UpdateDataSourceByUIDWithParams(datasources.NewUpdateDataSourceByUIDParamsWithContext(p.ctx).
			WithUID(d.UID).WithBody(&models.UpdateDataSourceCommand{
			UID: d.UID, Name: d.Name, Type: d.Type, URL: d.URL, Access: models.DsAccess(access),
			JSONData: d.JSONData, SecureJSONData: d.SecureJSONData, Version: cur.Version,
		}))
		return err
	})
	if err != nil {
		return "", p.fail(fmt.Sprintf("updating datasource %q", d.UID), code, err)
	}
	return Updated, nil
}

// sameJSON compares two JSON values as JSON (numbers as float64); an empty
// or absent object equals an empty one.
func sameJSON(a, b any) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	if m, ok := out.(map[string]any); out == nil || ok && len(m) == 0 {
		return map[string]any{}
	}
	return out
}

// ignored are the model fields Grafana assigns on every save, left out of
// the comparison.
var ignored = []string{"id", "version"}

func (p *pusher) dashboard(uid string, want map[string]any, folderUID string) (string, error) {
	for attempt := 0; ; attempt++ {
		var got *dashboards.GetDashboardByUIDOK
		code, err := p.call(func() (err error) {
			got, err = p.api.Dashboards.GetDashboardByUIDWithParams(dashboards.NewGetDashboardByUIDParamsWithContext(p.ctx).WithUID(uid))
			return err
		})
		body := make(map[string]any, len(want))
		for k, v := range want {
			body[k] = v
		}
		state := Created
		switch {
		case p.notFound(code):
			body["id"] = nil // a new dashboard
			delete(body, "version")
		case err != nil:
			return "", p.fail(fmt.Sprintf("reading dashboard %q", uid), code, err)
		default:
			stored, _ := normalize(got.Payload.Dashboard).(map[string]any)
			meta := got.Payload.Meta
			if meta == nil {
				meta = &models.DashboardMeta{}
			}
			if meta.FolderUID == folderUID && sameModel(stored, want) {
				return Unchanged, nil
			}
			state = Updated
			body["id"] = stored["id"]
			body["version"] = stored["version"]
			if body["version"] == nil {
				body["version"] = meta.Version
			}
		}
		code, err = p.call(func() error {
			_, err := p.api.Dashboards.PostDashboardWithParams(dashboards.NewPostDashboardParamsWithContext(p.ctx).
				WithBody(&models.SaveDashboardCommand{
					Dashboard: body, FolderUID: folderUID, Overwrite: false, Message: "vigil dashboards push",
				}))
			return err
		})
		switch {
		case err == nil:
			return state, nil
		case code == http.StatusPreconditionFailed && attempt == 0:
			continue // changed since we read it (or a conflict): read again, retry once
		case code == http.StatusPreconditionFailed:
			return "", p.fail(fmt.Sprintf("saving dashboard %q (title %q), again after reading it anew", uid, want["title"]), code, err)
		default:
			return "", p.fail(fmt.Sprintf("saving dashboard %q", uid), code, err)
		}
	}
}

// sameModel compares a stored dashboard model with ours, ignoring the
// fields Grafana assigns.
func sameModel(stored, want map[string]any) bool {
	a, b := map[string]any{}, map[string]any{}
	for k, v := range stored {
		a[k] = v
	}
	for k, v := range normalize(want).(map[string]any) {
		b[k] = v
	}
	for _, k := range ignored {
		delete(a, k)
		delete(b, k)
	}
	return reflect.DeepEqual(a, b)
}
