// Package grafanatest is an in-process fake of the part of Grafana's HTTP
// API that provisioning uses — folders, datasources and dashboards by UID —
// following Grafana's documented contract
// (https://grafana.com/docs/grafana/latest/developers/http_api/): status
// codes, JSON shapes and messages, Bearer authentication, optimistic
// locking by version (412 version-mismatch), 412 name-exists, secrets that
// are stored but never returned. It records every request so tests can
// count writes.
package grafanatest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is one request the fake received.
type Request struct {
	Method, Path string
}

// Folder is a stored folder.
type Folder struct {
	ID         int64
	UID, Title string
	Version    int64
}

// Datasource is a stored datasource, secrets included (Grafana keeps them
// encrypted and never returns them; tests may look).
type Datasource struct {
	ID                           int64
	UID, Name, Type, URL, Access string
	JSONData                     map[string]any
	SecureJSONData               map[string]string
	Version                      int64
}

// Dashboard is a stored dashboard: its model as Grafana returns it (with
// "id", "uid" and "version" set) and the folder it is in.
type Dashboard struct {
	ID        int64
	Model     map[string]any
	FolderUID string
	Version   int64
}

// Server is a fake Grafana on a loopback port, closed when the test ends.
type Server struct {
	// URL is the fake's base URL, e.g. http://127.0.0.1:41234.
	URL string

	token  string
	mu     sync.Mutex
	prefix string
	reqs   []Request
	hook   func(Request)
	fail   map[Request]failure
	nextID int64
	folder map[string]*Folder
	ds     map[string]*Datasource
	dash   map[string]*Dashboard
}

type failure struct {
	code int
	body map[string]any
}

// New starts a fake Grafana that accepts `Authorization: Bearer <token>`.
func New(t testing.TB, token string) *Server {
	s := &Server{
		token:  token,
		fail:   map[Request]failure{},
		folder: map[string]*Folder{},
		ds:     map[string]*Datasource{},
		dash:   map[string]*Dashboard{},
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// WithSubPath makes the fake serve under a sub-path (e.g. "/grafana", as
// Grafana does with serve_from_sub_path) instead of at the root.
func (s *Server) WithSubPath(prefix string) *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefix = strings.TrimSuffix(prefix, "/")
	return s
}

// Requests returns every request received so far, in order, the
// unauthenticated ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Writes returns the requests received so far that were not GETs.
func (s *Server) Writes() []Request {
	var w []Request
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet {
			w = append(w, r)
		}
	}
	return w
}

// OnRequest sets a function called with each authenticated request before
// the fake handles it (nil removes it), e.g. to simulate a concurrent edit
// with BumpVersion. It is called without the fake's lock held.
func (s *Server) OnRequest(f func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = f
}

// Fail makes every authenticated request with this method and path (as
// sent, sub-path included) answer code with Grafana's error body
// {"message": message}; a code of 0 removes the failure.
func (s *Server) Fail(method, path string, code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Request{method, path}
	if code == 0 {
		delete(s.fail, r)
		return
	}
	s.fail[r] = failure{code, map[string]any{"message": message}}
}

// Folder returns the stored folder uid.
func (s *Server) Folder(uid string) (Folder, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.folder[uid]
	if !ok {
		return Folder{}, false
	}
	return *f, true
}

// Datasource returns the stored datasource uid, secrets included.
func (s *Server) Datasource(uid string) (Datasource, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.ds[uid]
	if !ok {
		return Datasource{}, false
	}
	c := *d
	c.JSONData, c.SecureJSONData = clone(d.JSONData), maps.Clone(d.SecureJSONData)
	return c, true
}

// Dashboard returns the stored dashboard uid.
func (s *Server) Dashboard(uid string) (Dashboard, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dash[uid]
	if !ok {
		return Dashboard{}, false
	}
	c := *d
	c.Model = clone(d.Model)
	return c, true
}

// BumpVersion simulates someone saving dashboard uid in the UI: its stored
// version goes up by one (so a save based on the old version gets 412
// version-mismatch). It reports whether the dashboard exists.
func (s *Server) BumpVersion(uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dash[uid]
	if ok {
		d.Version++
		d.Model["version"] = d.Version
	}
	return ok
}

// SetFolderTitle simulates someone renaming folder uid in the UI.
func (s *Server) SetFolderTitle(uid, title string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.folder[uid]
	if ok {
		f.Title = title
		f.Version++
	}
	return ok
}

// clone deep-copies a JSON object through JSON.
func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(m)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c
}

var (
	folderPath = regexp.MustCompile(`^/api/folders/([^/]+)$`)
	dsPath     = regexp.MustCompile(`^/api/datasources/uid/([^/]+)$`)
	dashPath   = regexp.MustCompile(`^/api/dashboards/uid/([^/]+)$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	req := Request{r.Method, r.URL.Path}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	prefix, hook := s.prefix, s.hook
	s.mu.Unlock()

	// Grafana's answers to a missing and to a wrong credential.
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		reply(w, http.StatusUnauthorized, msg("Unauthorized"))
		return
	case auth != "Bearer "+s.token:
		reply(w, http.StatusUnauthorized, msg("Invalid API key"))
		return
	}
	if hook != nil {
		hook(req)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.fail[req]; ok {
		reply(w, f.code, f.body)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || !strings.HasPrefix(path, "/api/") {
		http.NotFound(w, r) // not Grafana's API: what a proxy in front would say
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body == nil {
			reply(w, http.StatusBadRequest, msg("bad request data"))
			return
		}
	}
	var m []string
	match := func(re *regexp.Regexp) bool { m = re.FindStringSubmatch(path); return m != nil }
	switch {
	case r.Method == http.MethodGet && match(folderPath):
		s.getFolder(w, m[1])
	case r.Method == http.MethodPost && path == "/api/folders":
		s.createFolder(w, body)
	case r.Method == http.MethodPut && match(folderPath):
		s.updateFolder(w, m[1], body)
	case r.Method == http.MethodGet && match(dsPath):
		s.getDatasource(w, m[1])
	case r.Method == http.MethodPost && path == "/api/datasources":
		s.createDatasource(w, body)
	case r.Method == http.MethodPut && match(dsPath):
		s.updateDatasource(w, m[1], body)
	case r.Method == http.MethodGet && match(dashPath):
		s.getDashboard(w, m[1])
	case r.Method == http.MethodPost && path == "/api/dashboards/db":
		s.saveDashboard(w, body)
	default:
		reply(w, http.StatusNotFound, msg("Not found"))
	}
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func msg(m string) map[string]any { return map[string]any{"message": m} }

func str(body map[string]any, k string) string { s, _ := body[k].(string); return s }

func num(body map[string]any, k string) int64 { f, _ := body[k].(float64); return int64(f) }

func now() string { return time.Now().UTC().Format(time.RFC3339) }

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(title string) string {
	return strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(title), "-"), "-")
}

func (s *Server) id() int64 { s.nextID++; return s.nextID }

// Folders: GET /api/folders/:uid, POST /api/folders, PUT /api/folders/:uid.

func (f *Folder) json() map[string]any {
	return map[string]any{
		"id": f.ID, "uid": f.UID, "title": f.Title, "url": "/dashboards/f/" + f.UID + "/" + slug(f.Title),
		"hasAcl": false, "canSave": true, "canEdit": true, "canAdmin": true, "canDelete": true,
		"createdBy": "sa-vigil", "created": now(), "updatedBy": "sa-vigil", "updated": now(), "version": f.Version,
	}
}

func (s *Server) getFolder(w http.ResponseWriter, uid string) {
	f, ok := s.folder[uid]
	if !ok {
		reply(w, http.StatusNotFound, msg("Folder not found"))
		return
	}
	reply(w, http.StatusOK, f.json())
}

func (s *Server) titleTaken(title, exceptUID string) bool {
	for _, f := range s.folder {
		if f.UID != exceptUID && strings.EqualFold(f.Title, title) {
			return true
		}
	}
	return false
}

func (s *Server) createFolder(w http.ResponseWriter, body map[string]any) {
	uid, title := str(body, "uid"), str(body, "title")
	switch {
	case title == "":
		reply(w, http.StatusBadRequest, msg("folder title cannot be empty"))
		return
	case uid == "":
		uid = fmt.Sprintf("f%d", s.nextID+1)
	}
	if _, ok := s.folder[uid]; ok {
		reply(w, http.StatusConflict, msg("a folder/dashboard with the same uid already exists"))
		return
	}
	if s.titleTaken(title, uid) {
		reply(w, http.StatusConflict, msg("a folder or dashboard in the general folder with the same name already exists"))
		return
	}
	f := &Folder{ID: s.id(), UID: uid, Title: title, Version: 1}
	s.folder[uid] = f
	reply(w, http.StatusOK, f.json())
}

func (s *Server) updateFolder(w http.ResponseWriter, uid string, body map[string]any) {
	f, ok := s.folder[uid]
	switch {
	case !ok:
		reply(w, http.StatusNotFound, msg("Folder not found"))
	case str(body, "title") == "":
		reply(w, http.StatusBadRequest, msg("folder title cannot be empty"))
	case body["overwrite"] != true && num(body, "version") != f.Version:
		reply(w, http.StatusPreconditionFailed, map[string]any{
			"message": "The folder has been changed by someone else", "status": "version-mismatch"})
	case s.titleTaken(str(body, "title"), uid):
		reply(w, http.StatusConflict, msg("a folder or dashboard in the general folder with the same name already exists"))
	default:
		f.Title = str(body, "title")
		f.Version++
		reply(w, http.StatusOK, f.json())
	}
}

// Datasources: GET /api/datasources/uid/:uid, POST /api/datasources,
// PUT /api/datasources/uid/:uid.

// json is the datasource as Grafana returns it: secrets only as
// secureJsonFields {key: true}.
func (d *Datasource) json() map[string]any {
	fields := map[string]bool{}
	for k := range d.SecureJSONData {
		fields[k] = true
	}
	jd := d.JSONData
	if jd == nil {
		jd = map[string]any{}
	}
	return map[string]any{
		"id": d.ID, "uid": d.UID, "orgId": 1, "name": d.Name, "type": d.Type, "typeLogoUrl": "",
		"access": d.Access, "url": d.URL, "user": "", "database": "", "basicAuth": false, "basicAuthUser": "",
		"withCredentials": false, "isDefault": false, "jsonData": jd, "secureJsonFields": fields,
		"version": d.Version, "readOnly": false,
	}
}

func (s *Server) getDatasource(w http.ResponseWriter, uid string) {
	d, ok := s.ds[uid]
	if !ok {
		reply(w, http.StatusNotFound, msg("Data source not found"))
		return
	}
	reply(w, http.StatusOK, d.json())
}

func (s *Server) nameTaken(name, exceptUID string) bool {
	for _, d := range s.ds {
		if d.UID != exceptUID && d.Name == name {
			return true
		}
	}
	return false
}

func secrets(body map[string]any) map[string]string {
	out := map[string]string{}
	m, _ := body["secureJsonData"].(map[string]any)
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

func (s *Server) createDatasource(w http.ResponseWriter, body map[string]any) {
	uid, name := str(body, "uid"), str(body, "name")
	if uid == "" {
		uid = fmt.Sprintf("ds%d", s.nextID+1)
	}
	switch {
	case name == "" || str(body, "type") == "":
		reply(w, http.StatusBadRequest, msg("bad request data"))
		return
	case s.ds[uid] != nil:
		reply(w, http.StatusConflict, msg("data source with the same uid already exists"))
		return
	case s.nameTaken(name, ""):
		reply(w, http.StatusConflict, msg("data source with the same name already exists"))
		return
	}
	jd, _ := body["jsonData"].(map[string]any)
	d := &Datasource{ID: s.id(), UID: uid, Name: name, Type: str(body, "type"), URL: str(body, "url"),
		Access: str(body, "access"), JSONData: jd, SecureJSONData: secrets(body), Version: 1}
	s.ds[uid] = d
	reply(w, http.StatusOK, map[string]any{"datasource": d.json(), "id": d.ID, "message": "Datasource added", "name": d.Name})
}

func (s *Server) updateDatasource(w http.ResponseWriter, uid string, body map[string]any) {
	d, ok := s.ds[uid]
	switch {
	case !ok:
		reply(w, http.StatusNotFound, msg("Data source not found"))
		return
	case str(body, "name") == "" || str(body, "type") == "":
		reply(w, http.StatusBadRequest, msg("bad request data"))
		return
	case num(body, "version") != 0 && num(body, "version") < d.Version:
		reply(w, http.StatusConflict, msg("Datasource has already been updated by someone else. Please reload and try again"))
		return
	case s.nameTaken(str(body, "name"), uid):
		reply(w, http.StatusConflict, msg("data source with the same name already exists"))
		return
	}
	d.Name, d.Type, d.URL, d.Access = str(body, "name"), str(body, "type"), str(body, "url"), str(body, "access")
	d.JSONData, _ = body["jsonData"].(map[string]any)
	// Secrets not sent are kept; sent ones replace the stored ones.
	maps.Copy(d.SecureJSONData, secrets(body))
	d.Version++
	reply(w, http.StatusOK, map[string]any{"datasource": d.json(), "id": d.ID, "message": "Datasource updated", "name": d.Name})
}

// Dashboards: GET /api/dashboards/uid/:uid, POST /api/dashboards/db.

func (s *Server) getDashboard(w http.ResponseWriter, uid string) {
	d, ok := s.dash[uid]
	if !ok {
		reply(w, http.StatusNotFound, msg("Dashboard not found"))
		return
	}
	title := str(d.Model, "title")
	meta := map[string]any{
		"type": "db", "canSave": true, "canEdit": true, "canAdmin": true, "canStar": true, "canDelete": true,
		"slug": slug(title), "url": "/d/" + uid + "/" + slug(title), "expires": "0001-01-01T00:00:00Z",
		"created": now(), "updated": now(), "updatedBy": "sa-vigil", "createdBy": "sa-vigil",
		"version": d.Version, "hasAcl": false, "isFolder": false, "provisioned": false, "provisionedExternalId": "",
		"folderUid": d.FolderUID,
	}
	if f, ok := s.folder[d.FolderUID]; ok {
		meta["folderId"], meta["folderTitle"], meta["folderUrl"] = f.ID, f.Title, "/dashboards/f/"+f.UID+"/"+slug(f.Title)
	}
	reply(w, http.StatusOK, map[string]any{"dashboard": clone(d.Model), "meta": meta})
}

// saveDashboard follows Grafana's checks: a known id must match the uid's,
// the posted version must be the stored one unless overwrite, and no other
// dashboard in the folder may have the same title unless overwrite.
func (s *Server) saveDashboard(w http.ResponseWriter, body map[string]any) {
	model, _ := body["dashboard"].(map[string]any)
	folderUID, overwrite := str(body, "folderUid"), body["overwrite"] == true
	if model == nil {
		reply(w, http.StatusBadRequest, msg("bad request data"))
		return
	}
	title, uid, id := str(model, "title"), str(model, "uid"), num(model, "id")
	if strings.TrimSpace(title) == "" {
		reply(w, http.StatusBadRequest, msg("Dashboard title cannot be empty"))
		return
	}
	if _, ok := s.folder[folderUID]; folderUID != "" && !ok {
		reply(w, http.StatusBadRequest, msg("Folder not found"))
		return
	}
	if uid == "" {
		uid = fmt.Sprintf("d%d", s.nextID+1)
	}
	cur := s.dash[uid]
	switch {
	case cur == nil && id != 0:
		reply(w, http.StatusNotFound, map[string]any{"message": "Dashboard not found", "status": "not-found"})
		return
	case cur != nil && id != 0 && id != cur.ID:
		reply(w, http.StatusBadRequest, msg("A dashboard with the same uid already exists"))
		return
	case cur != nil && !overwrite && num(model, "version") != cur.Version:
		reply(w, http.StatusPreconditionFailed, map[string]any{
			"message": "The dashboard has been changed by someone else", "status": "version-mismatch"})
		return
	}
	for _, o := range s.dash {
		if o.Model["uid"] != uid && o.FolderUID == folderUID && strings.EqualFold(str(o.Model, "title"), title) && !overwrite {
			reply(w, http.StatusPreconditionFailed, map[string]any{
				"message": "A dashboard with the same name in the folder already exists", "status": "name-exists"})
			return
		}
	}
	if cur == nil {
		cur = &Dashboard{ID: s.id()}
		s.dash[uid] = cur
	}
	cur.Version++
	cur.FolderUID = folderUID
	cur.Model = clone(model)
	cur.Model["id"], cur.Model["uid"], cur.Model["version"] = cur.ID, uid, cur.Version
	reply(w, http.StatusOK, map[string]any{
		"id": cur.ID, "uid": uid, "url": "/d/" + uid + "/" + slug(title), "status": "success",
		"version": cur.Version, "slug": slug(title), "folderUid": folderUID,
	})
}
