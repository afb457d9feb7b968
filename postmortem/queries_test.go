package postmortem_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/internal/golden"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/postmortem"
	"github.com/vigilhq/vigil/postmortem/fixture"
	"github.com/vigilhq/vigil/schemas/queries"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	from = "2026-11-20T13:00:00Z"
	to   = "2026-11-20T15:00:00Z"
)

// TestNamedQueries is issue 10's acceptance 1 for schemas/queries: each
// named query, its parameters bound, returns the expected rows on the
// fixture (golden files in testdata/queries/). Every query is covered.
func TestNamedQueries(t *testing.T) {
	fx := fixture.Load(t)
	cases := []struct {
		name, query string
		params      map[string]string
	}{
		{"timeline_family", "timeline", map[string]string{"kind": "family", "subject": "f1", "from": from, "to": to}},
		{"timeline_ip", "timeline", map[string]string{"kind": "ip", "subject": "203.0.113.50", "from": from, "to": to}},
		{"incident_events", "incident_events", map[string]string{"from": from, "to": to, "tenant": ""}},
		{"incident_events_globex", "incident_events", map[string]string{"from": from, "to": to, "tenant": "globex"}},
		{"incident_anomalies", "incident_anomalies", map[string]string{"from": from, "to": to, "tenant": ""}},
		{"revocation_blast_radius", "revocation_blast_radius", map[string]string{"from": from, "to": to, "tenant": ""}},
		{"revocations", "revocations", map[string]string{"from": from, "to": to, "tenant": "acme"}},
		{"valid_after_revocation", "valid_after_revocation", map[string]string{"from": from, "to": to, "tenant": "", "grace_ms": "5000"}},
		{"valid_after_revocation_acme", "valid_after_revocation", map[string]string{"from": from, "to": to, "tenant": "acme", "grace_ms": "5000"}},
		{"ip_sightings", "ip_sightings", map[string]string{"ip": "203.0.113.9", "from": from, "to": to}},
		{"asn_sightings", "asn_sightings", map[string]string{"asn": "14061", "from": from, "to": to}},
		{"anomaly_users_storm", "anomaly_users", map[string]string{"anomaly": "an_credential_stuffing"}},
		{"anomaly_users_theft", "anomaly_users", map[string]string{"anomaly": "an_replay_other_client"}},
		{"top_failed_login_sources_ip", "top_failed_login_sources", map[string]string{"by": "ip", "from": from, "to": to, "tenant": "", "limit": "5"}},
		{"top_failed_login_sources_country", "top_failed_login_sources", map[string]string{"by": "country", "from": from, "to": to, "tenant": "", "limit": "5"}},
		{"events_over_time", "events_over_time", map[string]string{"from": from, "to": to, "tenant": "acme", "step_s": "60"}},
		{"dead_letters", "dead_letters", map[string]string{"from": from, "to": to}},
		{"affected_subjects", "affected_subjects", map[string]string{"from": from, "to": to, "tenant": ""}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := postmortem.Run(context.Background(), fx.Conn, c.query, c.params)
			if err != nil {
				t.Fatal(err)
			}
			if len(tab.Rows) == 0 {
				t.Errorf("%s: no rows", c.name)
			}
			var b bytes.Buffer
			if err := tab.Write(&b, "table"); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "queries", c.name+".txt"), b.Bytes())
		})
		covered[c.query] = true
	}
	all, err := queries.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range all {
		if !covered[q.Name] {
			t.Errorf("named query %s has no golden test", q.Name)
		}
	}
}
