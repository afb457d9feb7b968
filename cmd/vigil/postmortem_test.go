package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/internal/golden"
	"github.com/vigilhq/vigil/postmortem/fixture"
)

// TestPostmortemCommands is issue 10's acceptance 1 for the commands:
// vigil timeline, incident and query on the fixture's incident, against
// golden files; and bad input refused with a usage error naming it.
func TestPostmortemCommands(t *testing.T) {
	fx := fixture.Load(t)
	env := map[string]string{"VIGIL_CLICKHOUSE_ADDR": fx.Addr, "VIGIL_CLICKHOUSE_DATABASE": fx.DB}
	window := []string{"--from", "2026-11-20T13:55:00Z", "--to", "2026-11-20 14:40:00"}
	dir := t.TempDir()
	for _, c := range []struct {
		golden string
		args   []string
	}{
		{"timeline-family.txt", append([]string{"timeline", "--family", "f1"}, window...)},
		{"timeline-user.md", append([]string{"timeline", "--user", "u4", "--format", "md"}, window...)},
		{"timeline-ip.csv", append([]string{"timeline", "--ip", "203.0.113.50", "--format", "csv"}, window...)},
		{"timeline-session.json", append([]string{"timeline", "--session", "s9", "--format", "json"}, window...)},
		{"incident.md", append([]string{"incident", "--tenant", "acme"}, window...)},
		{"query-list.txt", []string{"query", "--list"}},
		{"query-ip_sightings.txt", []string{"query", "ip_sightings", "--param", "ip=203.0.113.9", "--param", "from=" + window[1], "--param", "to=" + window[3]}},
		{"query-valid_after_revocation.csv", []string{"query", "valid_after_revocation", "--format", "csv",
			"--param", "from=2026-11-20T14:00:00Z", "--param", "to=2026-11-20T15:00:00Z", "--param", "grace_ms=5000", "--param", "tenant="}},
	} {
		out, errOut, err := run(t, env, c.args...)
		if err != nil {
			t.Errorf("vigil %s: %v\n%s", strings.Join(c.args, " "), err, errOut)
			continue
		}
		golden.Check(t, filepath.Join("testdata", "postmortem", c.golden), []byte(out))
	}

	html := filepath.Join(dir, "INC-1.html")
	out, _, err := run(t, env, append([]string{"incident", "--out", html}, window...)...)
	if err != nil || !strings.Contains(out, "wrote "+html) {
		t.Fatalf("incident --out: %v\n%s", err, out)
	}
	page, err := os.ReadFile(html)
	if err != nil || bytes.Count(page, []byte("<svg")) != 3 || !bytes.Contains(page, []byte("Credential-stuffing wave")) {
		t.Errorf("incident --out %s: %v, %d charts", html, err, bytes.Count(page, []byte("<svg")))
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"timeline"}, "give one of --session, --family, --user, --ip"},
		{[]string{"timeline", "--session", "s1", "--user", "u1"}, "give one of"},
		{[]string{"timeline", "--ip", "203.0.113"}, `--ip: "203.0.113" is not an IP address`},
		{[]string{"timeline", "--session", "s1", "--format", "xml"}, `--format: "xml" is not one of table, json, csv, md`},
		{[]string{"timeline", "--session", "s1", "--from", "yesterday"}, `--from: "yesterday" is not a time`},
		{[]string{"timeline", "--session", "s1", "--from", "2026-11-21T00:00:00Z", "--to", "2026-11-20T00:00:00Z"}, "must be after --from"},
		{[]string{"incident", "--from", "2026-11-20T00:00:00Z"}, "--from and --to are required"},
		{append([]string{"incident", "--out", "report.pdf"}, window...), `--out: "report.pdf" must end in .md or .html`},
		{[]string{"query"}, "usage: vigil query NAME"},
		{[]string{"query", "postmortem"}, `no query "postmortem" (have affected_subjects, anomaly_users`},
		{[]string{"query", "ip_sightings", "--param", "ip=1.2.3.4"}, "no value for parameter from"},
		{[]string{"query", "asn_sightings", "--param", "asn=AS3320", "--param", "from=" + window[1], "--param", "to=" + window[3]}, `parameter asn: "AS3320" is not a UInt32`},
		{[]string{"query", "dead_letters", "--param", "from=" + window[1], "--param", "to=" + window[3], "--param", "tenant=acme"}, "dead_letters has no parameter tenant"},
	} {
		_, _, err := run(t, env, c.args...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("vigil %s: %v (exit %d), want a usage error with %q", strings.Join(c.args, " "), err, exitCode(err), c.want)
		}
	}
}

// checkIncident runs vigil incident over everything stored in db and
// checks that its Markdown report (its timeline of main events) names
// each of want.
func checkIncident(t *testing.T, env map[string]string, conn driver.Conn, db string, want ...string) {
	t.Helper()
	var first, last time.Time
	if err := conn.QueryRow(context.Background(), "SELECT min(time), max(time) FROM "+db+".events").Scan(&first, &last); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, env, "incident", "--from", first.Add(-time.Minute).Format(time.RFC3339), "--to", last.Add(time.Minute).Format(time.RFC3339))
	if err != nil {
		t.Fatalf("incident: %v", err)
	}
	timeline := out
	if i := strings.Index(out, "\n## What vigil found"); i > 0 {
		timeline = out[:i]
	}
	for _, w := range want {
		if !strings.Contains(timeline, w) {
			t.Errorf("the incident report's timeline lacks %q:\n%s", w, timeline)
		}
	}
}
