package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
)

// TestTokenTheftAlert is issue 8's acceptance 1 end to end: `vigil run`
// sends a token theft to Debian's Alertmanager running the example routing
// tree, which notifies the security receiver exactly once, with the
// annotations filled, and resolves it after the window.
func TestTokenTheftAlert(t *testing.T) {
	hook := testenv.StartWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerConfig(t, "../../deploy/alertmanager/alertmanager.yml", hook, time.Second))
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 1, "vigil.dlq": 1, "vigil.actions": 1})
	srv, _, db := testenv.MigratedDatabase(t)
	vigil := startVigil(t, []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
		"VIGIL_INGEST_FLUSH_INTERVAL=50ms",
		"VIGIL_ALERTS_ALERTMANAGERS=" + am.URL,
		"VIGIL_ALERTS_ALLOW_HTTP=true",
		"VIGIL_ALERTS_HOLD=3s",
		"VIGIL_ALERTS_RESEND_INTERVAL=1s",
		"VIGIL_ALERTS_GRAFANA_URL=https://grafana.example.com",
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	created, rotation, replay := testenv.TokenTheft(time.Now().UTC().Add(-time.Minute))
	var recs []*kgo.Record
	for _, e := range []schemas.Event{created, rotation, replay} {
		recs = append(recs, &kgo.Record{Key: []byte(e.FamilyID), Value: schemas.AppendJSON(nil, &e)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	type seen struct {
		firing, resolved int
		ann              map[string]string
	}
	look := func() seen {
		var s seen
		for _, n := range hook.Notifications() {
			for _, a := range n.Alerts {
				if a.Labels["alertname"] != "VigilTokenReuse" {
					continue
				}
				if n.Receiver != "/security" {
					t.Errorf("VigilTokenReuse notified at %s", n.Receiver)
				}
				if a.Status == "firing" {
					s.firing++
					s.ann = a.Annotations
				} else {
					s.resolved++
				}
			}
		}
		return s
	}
	testenv.WaitFor(t, 2*time.Minute, "VigilTokenReuse resolved at the security receiver", func() (bool, string) {
		s := look()
		return s.firing >= 1 && s.resolved >= 1, fmt.Sprintf("%d firing, %d resolved", s.firing, s.resolved)
	})
	vigil.terminate(t, 30*time.Second)
	s := look()
	if s.firing != 1 || s.resolved != 1 {
		t.Errorf("%d firing and %d resolved notifications, want one each", s.firing, s.resolved)
	}
	for k, sub := range map[string]string{
		"summary":       "family f1 of user u1",
		"description":   "user u1, session s1, family f1",
		"action":        "revoke_family requested",
		"runbook_url":   "/VigilTokenReuse.md",
		"dashboard_url": "https://grafana.example.com/d/vigil-security/",
	} {
		if !strings.Contains(s.ann[k], sub) {
			t.Errorf("annotation %s = %q, want it to contain %q", k, s.ann[k], sub)
		}
	}
}
