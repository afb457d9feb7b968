package alerts_test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/internal/testenv"
)

// amConfig is the example Alertmanager configuration of deploy/alertmanager.
const amConfig = "../deploy/alertmanager/alertmanager.yml"

// TestAlertmanagerConfig: amtool accepts the example configuration, and it
// routes security alerts to security, sre alerts and anything unlabelled
// to sre-oncall, and a halted revoker to both.
func TestAlertmanagerConfig(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		testenv.Missing(t, "amtool", err)
	}
	if out, err := exec.Command(amtool, "check-config", amConfig).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config %s: %v\n%s", amConfig, err, out)
	}
	f := func(want string, labels ...string) {
		t.Helper()
		args := append([]string{"config", "routes", "test", "--config.file=" + amConfig, "--verify.receivers=" + want}, labels...)
		cmd := exec.Command(amtool, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if got := strings.TrimSpace(stdout.String()); err != nil || got != want {
			t.Errorf("alert %v routes to %q (%v), want %q\n%s", labels, got, err, want, stderr.String())
		}
	}
	f("security", "alertname=VigilTokenReuse", "team=security", "tenant=acme", "detector=token_reuse", "severity=critical")
	f("security", "alertname=VigilCredentialStuffing", "team=security", "tenant=acme", "detector=login_storm")
	f("sre-oncall", "alertname=VigilReconnectStorm", "team=sre", "tenant=acme", "detector=login_storm")
	f("sre-oncall", "alertname=VigilPipelineDown", "team=sre", "severity=page")
	f("sre-oncall", "alertname=SomethingElse")
	f("security,sre-oncall", "alertname=VigilRevocationHalted", "team=security", "detector=revoke")
	f("security,sre-oncall", "alertname=VigilRevocationHalted", "team=sre", "detector=revoke")
}

// TestAlertmanagerConfigNamesKnownAlerts: the routes and inhibitions of
// the example name only alerts that exist, so a renamed alert cannot
// silently escape its inhibition.
func TestAlertmanagerConfigNamesKnownAlerts(t *testing.T) {
	b, err := os.ReadFile(amConfig)
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := defaultPipeline(t)
	known := map[string]bool{}
	for _, n := range append(alerts.AlertNames(groups), alerts.AnomalyAlertNames...) {
		known[n] = true
	}
	names := regexp.MustCompile(`\bVigil[A-Za-z]+\b`).FindAllString(string(b), -1)
	if len(names) == 0 {
		t.Fatal("the example names no vigil alert")
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("%s names %s, which is neither a pipeline nor an anomaly alert", amConfig, n)
		}
	}
}
