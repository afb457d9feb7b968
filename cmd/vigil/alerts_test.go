package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/sim/sessionapi"
)

// TestTokenTheftAlert is issue 8's acceptance 1 end to end: one
// token_theft_replay in the simulator, `vigil run` detects it, revokes the
// family at the simulator's API and sends the alert to Debian's
// Alertmanager running the example routing tree, which notifies the
// security receiver exactly once, with the annotations filled, and
// resolves it after the window.
func TestTokenTheftAlert(t *testing.T) {
	hook := testenv.StartWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AlertmanagerConfig(t, "../../deploy/alertmanager/alertmanager.yml", hook, time.Second))
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 1, "vigil.dlq": 1, "vigil.actions": 1})
	srv, _, db := testenv.MigratedDatabase(t)

	// The simulated session service: one theft, its API up before vigil.
	so := &simOptions{users: 2000, tenants: 1, sampleRate: 1, rate: 800, speedup: 6, duration: 90 * time.Second,
		scenarios: "token_theft_replay", seed: 5, truthPath: filepath.Join(t.TempDir(), "truth.jsonl"), api: sessionapi.DefaultConfig(), flat: true}
	simCfg, err := so.config(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	simCfg.Scenarios[0].Count = 1
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := simWriter(brokers, "session-events", tr)
	defer w.Close()
	simRun, err := startSimulation(context.Background(), simCfg, so, w)
	if err != nil {
		t.Fatal(err)
	}
	defer simRun.close(context.Background())

	vigil := startVigil(t, []string{
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE=" + db,
		"VIGIL_INGEST_FLUSH_INTERVAL=100ms",
		"VIGIL_REVOKE_ADAPTER_KIND=http",
		"VIGIL_REVOKE_ADAPTER_URL=http://" + simRun.api.Addr(),
		"VIGIL_REVOKE_ADAPTER_ALLOW_HTTP=true",
		"VIGIL_ALERTS_ALERTMANAGERS=" + am.URL,
		"VIGIL_ALERTS_ALLOW_HTTP=true",
		"VIGIL_ALERTS_HOLD=3s",
		"VIGIL_ALERTS_RESEND_INTERVAL=1s",
		"VIGIL_ALERTS_GRAFANA_URL=https://grafana.example.com",
	})
	testenv.WaitFor(t, time.Minute, "vigil ready", func() (bool, string) {
		code, body := vigil.get("/readyz")
		return code == 200, body
	})
	if err := simRun.prod.Run(context.Background()); err != nil {
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
	if st := simRun.api.Stats(); st.Revoked != 1 {
		t.Errorf("the simulator's API revoked %d subjects, want the stolen family", st.Revoked)
	}
	for k, sub := range map[string]string{
		"summary":       "Refresh token replayed",
		"description":   "Who: user ",
		"action":        "revoke_family requested",
		"runbook_url":   "/VigilTokenReuse.md",
		"dashboard_url": "https://grafana.example.com/d/vigil-session/vigil-session?",
	} {
		if !strings.Contains(s.ann[k], sub) {
			t.Errorf("annotation %s = %q, want it to contain %q", k, s.ann[k], sub)
		}
	}
}
