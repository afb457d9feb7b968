package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/dashboards"
	"github.com/vigilhq/vigil/dashboards/provision/grafanatest"
)

// TestDashboardsGenerate: `vigil dashboards generate --out DIR` writes
// exactly the committed dashboards/json files.
func TestDashboardsGenerate(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, nil, "dashboards", "generate", "--out", dir)
	if err != nil {
		t.Fatalf("dashboards generate: %v\n%s", err, out)
	}
	want, err := filepath.Glob("../../dashboards/json/*.json")
	if err != nil || len(want) != 4 {
		t.Fatalf("committed dashboards: %v %v, want 4", want, err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(got) != len(want) {
		t.Errorf("generate wrote %d files, want %d:\n%s", len(got), len(want), out)
	}
	for _, w := range want {
		wb, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		gb, err := os.ReadFile(filepath.Join(dir, filepath.Base(w)))
		if err != nil {
			t.Errorf("generate did not write %s: %v", filepath.Base(w), err)
			continue
		}
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s differs from dashboards/json (go test ./dashboards -update refreshes it)", filepath.Base(w))
		}
		if !strings.Contains(out, filepath.Base(w)) {
			t.Errorf("generate output does not name %s:\n%s", filepath.Base(w), out)
		}
	}
	if _, _, err := run(t, nil, "dashboards", "frob"); exitCode(err) != 2 {
		t.Errorf("unknown subcommand: %v, want a usage error", err)
	}
}

// TestDashboardsPush: `vigil dashboards push` against a fake that follows
// Grafana's HTTP API creates the folder, both datasources (the ClickHouse
// password in secureJsonData) and the four dashboards; a second push
// writes nothing; a wrong token fails clearly without printing the token.
func TestDashboardsPush(t *testing.T) {
	const token = "glsa_right-token-0123456789"
	g := grafanatest.New(t, token)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"VIGIL_CLICKHOUSE_ADDR":     "clickhouse.internal:9440",
		"VIGIL_CLICKHOUSE_DATABASE": "vigil_prod",
		"VIGIL_CLICKHOUSE_PASSWORD": "ch-secret-s3cr3t",
	}
	args := []string{"dashboards", "push", "--grafana-url", g.URL, "--token-file", tokenFile,
		"--folder", "sre-vigil", "--folder-title", "SRE / vigil", "--prometheus-url", "http://prom.internal:9090/"}

	out, errOut, err := run(t, env, args...)
	if err != nil {
		t.Fatalf("first push: %v\n%s%s", err, out, errOut)
	}
	if n := strings.Count(out, "created"); n != 1+2+4 {
		t.Errorf("first push: %d created, want 7 (folder, 2 datasources, 4 dashboards):\n%s", n, out)
	}
	if f, ok := g.Folder("sre-vigil"); !ok || f.Title != "SRE / vigil" {
		t.Errorf("folder = %+v, %v", f, ok)
	}
	ch, ok := g.Datasource(dashboards.ClickHouseUID)
	if !ok {
		t.Fatal("no ClickHouse datasource")
	}
	if ch.SecureJSONData["password"] != "ch-secret-s3cr3t" || ch.JSONData["host"] != "clickhouse.internal" ||
		ch.JSONData["defaultDatabase"] != "vigil_prod" || ch.Type != dashboards.ClickHouseType {
		t.Errorf("ClickHouse datasource = %+v", ch)
	}
	if p, port := ch.JSONData["port"], float64(9440); p != port && p != 9440 {
		t.Errorf("ClickHouse port = %v (%T), want 9440", p, p)
	}
	if _, inJSON := ch.JSONData["password"]; inJSON {
		t.Error("the ClickHouse password is in jsonData, want secureJsonData only")
	}
	prom, ok := g.Datasource(dashboards.PrometheusUID)
	if !ok || prom.URL != "http://prom.internal:9090" || prom.Type != dashboards.PrometheusType {
		t.Errorf("Prometheus datasource = %+v, %v", prom, ok)
	}
	for _, uid := range []string{"vigil-slo", "vigil-security", "vigil-pipeline", "vigil-session"} {
		d, ok := g.Dashboard(uid)
		if !ok || d.FolderUID != "sre-vigil" {
			t.Errorf("dashboard %s = %v in folder %q", uid, ok, d.FolderUID)
		}
	}
	if strings.Contains(out+errOut, "ch-secret") || strings.Contains(out+errOut, token) {
		t.Errorf("a secret reached the output:\n%s%s", out, errOut)
	}

	writes := len(g.Writes())
	out, errOut, err = run(t, env, args...)
	if err != nil {
		t.Fatalf("second push: %v\n%s%s", err, out, errOut)
	}
	if n := strings.Count(out, "unchanged"); n != 7 || len(g.Writes()) != writes {
		t.Errorf("second push: %d unchanged, %d new writes; want 7 and 0:\n%s", n, len(g.Writes())-writes, out)
	}

	// A rotated password: only --rewrite-secrets sends it.
	env["VIGIL_CLICKHOUSE_PASSWORD"] = "ch-secret-rotated"
	if out, _, err = run(t, env, args...); err != nil || strings.Count(out, "unchanged") != 7 {
		t.Errorf("push after a rotation without --rewrite-secrets: %v\n%s", err, out)
	}
	if out, _, err = run(t, env, append(args, "--rewrite-secrets")...); err != nil || !strings.Contains(out, "updated") {
		t.Errorf("push --rewrite-secrets: %v\n%s", err, out)
	}
	if ch, _ := g.Datasource(dashboards.ClickHouseUID); ch.SecureJSONData["password"] != "ch-secret-rotated" {
		t.Errorf("after --rewrite-secrets Grafana holds password %q", ch.SecureJSONData["password"])
	}
	writes = len(g.Writes())

	bad := filepath.Join(dir, "bad-token")
	if err := os.WriteFile(bad, []byte("glsa_wrong-token-9876543210"), 0o600); err != nil {
		t.Fatal(err)
	}
	args[5] = bad
	_, _, err = run(t, env, args...)
	if err == nil || !strings.Contains(err.Error(), "authentication refused (HTTP 401)") || !strings.Contains(err.Error(), "--token-file") ||
		strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("wrong token: %v, want a clear 401 error naming --token-file and not the token", err)
	}
	if len(g.Writes()) != writes {
		t.Errorf("a push with a wrong token wrote %d times", len(g.Writes())-writes)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dashboards", "push", "--token-file", tokenFile}, "--grafana-url is required"},
		{[]string{"dashboards", "push", "--grafana-url", g.URL}, "--token-file is required"},
		{[]string{"dashboards", "push", "--grafana-url", "grafana:3000", "--token-file", tokenFile}, "--grafana-url must be an http(s) URL"},
		{[]string{"dashboards", "push", "--grafana-url", g.URL, "--token-file", filepath.Join(dir, "missing")}, "--token-file"},
	} {
		_, _, err := run(t, env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}

	// A read-only user for Grafana, and ClickHouse over TLS with a private
	// CA: Grafana gets the reader and the CA, not vigil's password.
	g2 := grafanatest.New(t, token)
	ca := filepath.Join(dir, "ca.pem")
	caPEM := "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
	readerPW := filepath.Join(dir, "reader-password")
	if err := os.WriteFile(ca, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(readerPW, []byte("reader-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["VIGIL_CLICKHOUSE_TLS_ENABLED"] = "true"
	env["VIGIL_CLICKHOUSE_TLS_CA_FILE"] = ca
	out, errOut, err = run(t, env, "dashboards", "push", "--grafana-url", g2.URL, "--token-file", tokenFile,
		"--clickhouse-user", "grafana_reader", "--clickhouse-password-file", readerPW)
	if err != nil {
		t.Fatalf("push with a reader: %v\n%s%s", err, out, errOut)
	}
	ch, _ = g2.Datasource(dashboards.ClickHouseUID)
	if ch.JSONData["username"] != "grafana_reader" || ch.SecureJSONData["password"] != "reader-s3cret" ||
		ch.JSONData["secure"] != true || ch.JSONData["tlsAuthWithCACert"] != true || ch.SecureJSONData["tlsCACert"] != caPEM {
		t.Errorf("ClickHouse datasource with a reader over TLS = %+v", ch)
	}
	if _, _, err := run(t, env, "dashboards", "push", "--grafana-url", g2.URL, "--token-file", tokenFile, "--clickhouse-password-file", readerPW); exitCode(err) != 2 {
		t.Errorf("--clickhouse-password-file without --clickhouse-user: %v, want a usage error", err)
	}
}
