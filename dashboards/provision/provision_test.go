package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/dashboards/provision"
	"github.com/vigilhq/vigil/dashboards/provision/grafanatest"
)

const (
	token    = "glsa_s3cr3tT0ken_0123456789abcdef"
	password = "ch-p4ssw0rd-never-shown"
)

func target(srv *grafanatest.Server) provision.Target {
	return provision.Target{URL: srv.URL, Token: token, FolderUID: "vigil", FolderTitle: "vigil"}
}

func datasources() []provision.Datasource {
	return []provision.Datasource{
		{UID: "vigil-prometheus", Name: "vigil Prometheus", Type: "prometheus", URL: "http://prometheus:9090",
			JSONData: map[string]any{"httpMethod": "POST", "timeInterval": "15s"}},
		{UID: "vigil-clickhouse", Name: "vigil ClickHouse", Type: "grafana-clickhouse-datasource",
			JSONData: map[string]any{"host": "clickhouse", "port": 9000, "protocol": "native",
				"defaultDatabase": "vigil", "username": "grafana"},
			SecureJSONData: map[string]string{"password": password}},
	}
}

func dashboard(uid, title, expr string) provision.Dashboard {
	m := map[string]any{
		"uid": uid, "title": title, "schemaVersion": 39, "tags": []string{"vigil"},
		"panels": []any{map[string]any{"id": 1, "type": "timeseries", "title": "rate",
			"datasource": map[string]any{"type": "prometheus", "uid": "vigil-prometheus"},
			"targets":    []any{map[string]any{"refId": "A", "expr": expr}}}},
	}
	b, _ := json.Marshal(m)
	return provision.Dashboard{UID: uid, Title: title, JSON: b}
}

func dashboards() []provision.Dashboard {
	return []provision.Dashboard{
		dashboard("vigil-slo", "vigil / SLO", "sum(rate(vigil_events_total[5m]))"),
		dashboard("vigil-pipeline", "vigil / Pipeline", "vigil_kafka_lag"),
	}
}

func push(t *testing.T, srv *grafanatest.Server, dbs []provision.Dashboard) provision.Result {
	t.Helper()
	res, err := provision.Push(context.Background(), target(srv), datasources(), dbs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func all(state string) provision.Result {
	return provision.Result{Folder: state,
		Datasources: map[string]string{"vigil-prometheus": state, "vigil-clickhouse": state},
		Dashboards:  map[string]string{"vigil-slo": state, "vigil-pipeline": state}}
}

// TestPushCreatesThenChangesNothing: a first push creates everything, in
// the folder, with the secret stored; a second identical push only reads.
func TestPushCreatesThenChangesNothing(t *testing.T) {
	srv := grafanatest.New(t, token)
	if res := push(t, srv, dashboards()); !reflect.DeepEqual(res, all(provision.Created)) {
		t.Fatalf("first push: %+v", res)
	}
	if f, ok := srv.Folder("vigil"); !ok || f.Title != "vigil" {
		t.Errorf("folder: %+v %v", f, ok)
	}
	ch, ok := srv.Datasource("vigil-clickhouse")
	if !ok || ch.Type != "grafana-clickhouse-datasource" || ch.Access != "proxy" || ch.SecureJSONData["password"] != password ||
		ch.JSONData["defaultDatabase"] != "vigil" {
		t.Errorf("clickhouse datasource: %+v", ch)
	}
	if p, ok := srv.Datasource("vigil-prometheus"); !ok || p.URL != "http://prometheus:9090" || len(p.SecureJSONData) != 0 {
		t.Errorf("prometheus datasource: %+v", p)
	}
	for _, uid := range []string{"vigil-slo", "vigil-pipeline"} {
		d, ok := srv.Dashboard(uid)
		if !ok || d.FolderUID != "vigil" || d.Version != 1 || d.Model["uid"] != uid {
			t.Errorf("dashboard %s: %+v", uid, d)
		}
	}
	before := len(srv.Requests())
	if res := push(t, srv, dashboards()); !reflect.DeepEqual(res, all(provision.Unchanged)) {
		t.Fatalf("second push: %+v", res)
	}
	second := srv.Requests()[before:]
	if len(second) != 5 { // folder, 2 datasources, 2 dashboards: one GET each
		t.Errorf("second push made %d requests, want 5: %v", len(second), second)
	}
	for _, r := range second {
		if r.Method != http.MethodGet {
			t.Errorf("second push wrote: %v", r)
		}
	}
}

// TestPushUpdates: only what differs is written, and reported updated.
func TestPushUpdates(t *testing.T) {
	f := func(name string, change func(srv *grafanatest.Server, dbs []provision.Dashboard, ds []provision.Datasource),
		want func(r *provision.Result), writes []grafanatest.Request) {
		t.Run(name, func(t *testing.T) {
			srv := grafanatest.New(t, token)
			push(t, srv, dashboards())
			dbs, ds := dashboards(), datasources()
			change(srv, dbs, ds)
			n := len(srv.Writes())
			res, err := provision.Push(context.Background(), target(srv), ds, dbs)
			if err != nil {
				t.Fatal(err)
			}
			w := all(provision.Unchanged)
			want(&w)
			if !reflect.DeepEqual(res, w) {
				t.Errorf("result %+v, want %+v", res, w)
			}
			if got := srv.Writes()[n:]; !slices.Equal(got, writes) {
				t.Errorf("writes %v, want %v", got, writes)
			}
		})
	}
	f("dashboard model", func(_ *grafanatest.Server, dbs []provision.Dashboard, _ []provision.Datasource) {
		dbs[0] = dashboard("vigil-slo", "vigil / SLO", "sum(rate(vigil_events_total[1m]))")
	}, func(r *provision.Result) { r.Dashboards["vigil-slo"] = provision.Updated },
		[]grafanatest.Request{{Method: "POST", Path: "/api/dashboards/db"}})
	f("folder renamed in the UI", func(srv *grafanatest.Server, _ []provision.Dashboard, _ []provision.Datasource) {
		srv.SetFolderTitle("vigil", "someone's")
	}, func(r *provision.Result) { r.Folder = provision.Updated },
		[]grafanatest.Request{{Method: "PUT", Path: "/api/folders/vigil"}})
	f("datasource url", func(_ *grafanatest.Server, _ []provision.Dashboard, ds []provision.Datasource) {
		ds[0].URL = "http://prometheus-2:9090"
	}, func(r *provision.Result) { r.Datasources["vigil-prometheus"] = provision.Updated },
		[]grafanatest.Request{{Method: "PUT", Path: "/api/datasources/uid/vigil-prometheus"}})
	f("datasource jsonData", func(_ *grafanatest.Server, _ []provision.Dashboard, ds []provision.Datasource) {
		ds[1].JSONData["port"] = 9440
	}, func(r *provision.Result) { r.Datasources["vigil-clickhouse"] = provision.Updated },
		[]grafanatest.Request{{Method: "PUT", Path: "/api/datasources/uid/vigil-clickhouse"}})
	f("new secret key", func(_ *grafanatest.Server, _ []provision.Dashboard, ds []provision.Datasource) {
		ds[1].SecureJSONData["tlsCACert"] = "-----BEGIN CERTIFICATE-----"
	}, func(r *provision.Result) { r.Datasources["vigil-clickhouse"] = provision.Updated },
		[]grafanatest.Request{{Method: "PUT", Path: "/api/datasources/uid/vigil-clickhouse"}})
	f("only a secret's value (not detectable)", func(_ *grafanatest.Server, _ []provision.Dashboard, ds []provision.Datasource) {
		ds[1].SecureJSONData["password"] = "rotated"
	}, func(*provision.Result) {}, nil)

	t.Run("version and secret kept", func(t *testing.T) {
		srv := grafanatest.New(t, token)
		push(t, srv, dashboards())
		dbs, ds := dashboards(), datasources()
		dbs[1] = dashboard("vigil-pipeline", "vigil / Pipeline", "max(vigil_kafka_lag)")
		ds[1].JSONData["port"], ds[1].SecureJSONData = 9440, nil
		if _, err := provision.Push(context.Background(), target(srv), ds, dbs); err != nil {
			t.Fatal(err)
		}
		d, _ := srv.Dashboard("vigil-pipeline")
		if d.Version != 2 || d.Model["version"] != 2.0 || !strings.Contains(string(must(json.Marshal(d.Model))), "max(vigil_kafka_lag)") {
			t.Errorf("dashboard after update: %+v", d)
		}
		if c, _ := srv.Datasource("vigil-clickhouse"); c.SecureJSONData["password"] != password || c.Version != 2 {
			t.Errorf("an update without secrets lost the stored one: %+v", c)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestPushConflict: a dashboard saved by someone between our read and our
// write is read again and saved once more; a conflict that persists is an
// error naming the dashboard and quoting Grafana.
func TestPushConflict(t *testing.T) {
	f := func(name string, times int, wantErr string) {
		t.Run(name, func(t *testing.T) {
			srv := grafanatest.New(t, token)
			push(t, srv, dashboards())
			bumps := 0
			srv.OnRequest(func(r grafanatest.Request) {
				if r.Method == http.MethodPost && r.Path == "/api/dashboards/db" && bumps < times {
					bumps++
					srv.BumpVersion("vigil-slo")
				}
			})
			dbs := dashboards()
			dbs[0] = dashboard("vigil-slo", "vigil / SLO", "sum(rate(vigil_events_total[1m]))")
			n := len(srv.Writes())
			res, err := provision.Push(context.Background(), target(srv), datasources(), dbs)
			if writes := len(srv.Writes()) - n; writes != 2 {
				t.Errorf("%d writes, want 2 (the 412 and the retry)", writes)
			}
			if wantErr == "" {
				d, _ := srv.Dashboard("vigil-slo")
				if err != nil || res.Dashboards["vigil-slo"] != provision.Updated || d.Version != 3 {
					t.Fatalf("%v %+v, dashboard %+v", err, res, d)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("error %v, want one containing %q", err, wantErr)
			}
			t.Log(err)
			if _, ok := res.Dashboards["vigil-slo"]; ok {
				t.Errorf("failed dashboard in the result: %+v", res)
			}
		})
	}
	f("once", 1, "")
	f("always", 1000, `saving dashboard "vigil-slo" (title "vigil / SLO"), again after reading it anew: HTTP 412 (version-mismatch): "The dashboard has been changed by someone else"`)

	t.Run("name exists", func(t *testing.T) {
		srv := grafanatest.New(t, token)
		push(t, srv, dashboards())
		dbs := []provision.Dashboard{dashboard("vigil-slo-2", "vigil / SLO", "up")}
		_, err := provision.Push(context.Background(), target(srv), nil, dbs)
		if err == nil || !strings.Contains(err.Error(), `"vigil-slo-2"`) || !strings.Contains(err.Error(), "name-exists") {
			t.Fatalf("error %v", err)
		}
		t.Log(err)
	})
}

// TestPushErrors: a refused token, a rejected datasource, a wrong URL and
// bad input give clear errors that never hold the token or a secret.
func TestPushErrors(t *testing.T) {
	f := func(name string, setup func(srv *grafanatest.Server, tg *provision.Target, ds []provision.Datasource), want ...string) {
		t.Run(name, func(t *testing.T) {
			srv := grafanatest.New(t, token)
			tg, ds := target(srv), datasources()
			setup(srv, &tg, ds)
			_, err := provision.Push(context.Background(), tg, ds, dashboards())
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q", w)
				}
			}
			for _, secret := range []string{token, password, "wrong-token-abc"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error holds a secret %q", secret)
				}
			}
			for _, r := range srv.Writes() {
				if name == "wrong token" || name == "no token" {
					t.Errorf("wrote with a refused token: %v", r)
				}
			}
		})
	}
	f("wrong token", func(_ *grafanatest.Server, tg *provision.Target, _ []provision.Datasource) {
		tg.Token = "wrong-token-abc"
	}, "grafana: http://127.0.0.1:", "authentication refused", "HTTP 401", `reading folder "vigil"`, `"Invalid API key"`, "check --token-file")
	f("no token", func(_ *grafanatest.Server, tg *provision.Target, _ []provision.Datasource) {
		tg.Token = ""
	}, "authentication refused", "HTTP 401", `"Unauthorized"`)
	f("forbidden", func(srv *grafanatest.Server, _ *provision.Target, _ []provision.Datasource) {
		srv.Fail("POST", "/api/datasources", http.StatusForbidden, "You'll need additional permissions to perform this action. Permissions needed: datasources:create")
	}, "authentication refused", "HTTP 403", `creating datasource "vigil-prometheus"`, "datasources:create")
	f("datasource rejected", func(srv *grafanatest.Server, _ *provision.Target, _ []provision.Datasource) {
		srv.Fail("POST", "/api/datasources", http.StatusBadRequest, "Failed to add datasource")
	}, `creating datasource "vigil-prometheus": HTTP 400: "Failed to add datasource"`)
	f("datasource rejected, echoing the secret", func(srv *grafanatest.Server, _ *provision.Target, ds []provision.Datasource) {
		ds[0], ds[1] = ds[1], ds[0]
		srv.Fail("POST", "/api/datasources", http.StatusBadRequest, "invalid password "+password)
	}, `creating datasource "vigil-clickhouse": HTTP 400: "invalid password [redacted]"`)
	f("dashboard rejected", func(srv *grafanatest.Server, _ *provision.Target, _ []provision.Datasource) {
		srv.Fail("POST", "/api/dashboards/db", http.StatusBadRequest, "Dashboard title cannot be empty")
	}, `saving dashboard "vigil-slo": HTTP 400: "Dashboard title cannot be empty"`)
	f("server error", func(srv *grafanatest.Server, _ *provision.Target, _ []provision.Datasource) {
		srv.Fail("GET", "/api/folders/vigil", http.StatusInternalServerError, "Internal Server Error")
	}, `reading folder "vigil": HTTP 500: "Internal Server Error"`)
	f("wrong sub-path", func(srv *grafanatest.Server, tg *provision.Target, _ []provision.Datasource) {
		tg.URL += "/nope"
		srv.WithSubPath("/grafana")
	}, `reading folder "vigil": HTTP 404 and not a Grafana API answer`)
	f("not listening", func(srv *grafanatest.Server, tg *provision.Target, _ []provision.Datasource) {
		tg.URL = "http://127.0.0.1:1"
	}, `grafana: http://127.0.0.1:1: reading folder "vigil": Get "http://127.0.0.1:1/api/folders/vigil"`)
	f("bad URL", func(_ *grafanatest.Server, tg *provision.Target, _ []provision.Datasource) {
		tg.URL = "grafana:3000"
	}, "the Grafana URL must be http(s)://host")
	f("no folder", func(_ *grafanatest.Server, tg *provision.Target, _ []provision.Datasource) {
		tg.FolderTitle = ""
	}, "the folder's UID and title are required")
	f("datasource without type", func(_ *grafanatest.Server, _ *provision.Target, ds []provision.Datasource) {
		ds[1].Type = ""
	}, `datasource 1 ("vigil-clickhouse")`)

	t.Run("dashboard input", func(t *testing.T) {
		for _, c := range []struct {
			d    provision.Dashboard
			want string
		}{
			{provision.Dashboard{UID: "a", JSON: []byte(`[]`)}, "not a JSON object"},
			{provision.Dashboard{UID: "a", JSON: []byte(`{"uid":"b","title":"t"}`)}, `the model's uid is "b", want "a"`},
			{provision.Dashboard{JSON: []byte(`{"title":"t"}`)}, `the model's uid is ""`},
			{provision.Dashboard{UID: "a", JSON: []byte(`{}`)}, `the model's title is ""`},
		} {
			_, err := provision.Push(context.Background(), provision.Target{URL: "http://127.0.0.1:1", FolderUID: "f", FolderTitle: "f"},
				nil, []provision.Dashboard{c.d})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want %q", c.d.JSON, err, c.want)
			}
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		srv := grafanatest.New(t, token)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := provision.Push(ctx, target(srv), datasources(), dashboards())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
}

// TestPushSubPathAndClient: Grafana under a sub-path, through the caller's
// HTTP client; a model without "uid"/"title" takes Dashboard's.
func TestPushSubPathAndClient(t *testing.T) {
	srv := grafanatest.New(t, token).WithSubPath("/grafana")
	used := false
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	tg := target(srv)
	tg.URL, tg.HTTPClient = srv.URL+"/grafana/", hc
	dbs := []provision.Dashboard{{UID: "vigil-x", Title: "vigil / X", JSON: []byte(`{"panels":[]}`)}}
	res, err := provision.Push(context.Background(), tg, nil, dbs)
	if err != nil || res.Dashboards["vigil-x"] != provision.Created || !used {
		t.Fatalf("%v %+v (client used: %v)", err, res, used)
	}
	for _, r := range srv.Requests() {
		if !strings.HasPrefix(r.Path, "/grafana/api/") {
			t.Errorf("request outside the sub-path: %v", r)
		}
	}
	if d, _ := srv.Dashboard("vigil-x"); d.Model["title"] != "vigil / X" {
		t.Errorf("stored %+v", d)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
