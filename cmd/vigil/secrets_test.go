package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/testenv"
)

// plantSecret writes a distinctive secret to a file in dir and returns
// both.
func plantSecret(t *testing.T, dir, name string) (secret, path string) {
	t.Helper()
	secret = "planted-" + name + "-Zq81xW"
	return secret, writeSecret(t, dir, name, secret)
}

// writeSecret writes a one-line secret file (mode 0600) and returns its path.
func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noSecrets fails t if text, what vigil printed, holds any of secrets.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s leaks the secret %q:\n%s", what, s, text)
		}
	}
}

// TestPlantedSecretsStayOut plants secrets in every place vigil reads
// them from (files and the environment) and drives vigil down the paths
// where they are used and fail — a password ClickHouse refuses, SASL a
// broker does not offer — then scans everything it printed: config check,
// debug logs and errors. The admin token guards /metrics.
func TestPlantedSecretsStayOut(t *testing.T) {
	dir := t.TempDir()
	chPassword := "planted-clickhouse-env-Zq81xW"
	saslPassword, saslFile := plantSecret(t, dir, "kafka-password")
	apiToken, apiTokenFile := plantSecret(t, dir, "api-token")
	adminToken, adminTokenFile := plantSecret(t, dir, "admin-token")
	secrets := []string{chPassword, saslPassword, apiToken, adminToken}

	// config check --print names the files, never their content.
	env := map[string]string{
		"VIGIL_KAFKA_SASL_MECHANISM": "plain", "VIGIL_KAFKA_SASL_USERNAME": "vigil", "VIGIL_KAFKA_SASL_PASSWORD_FILE": saslFile,
		"VIGIL_REVOKE_ADAPTER_KIND": "http", "VIGIL_REVOKE_ADAPTER_URL": "https://sessions.invalid", "VIGIL_REVOKE_ADAPTER_TOKEN_FILE": apiTokenFile,
		"VIGIL_ADMIN_TOKEN_FILE": adminTokenFile, "VIGIL_CLICKHOUSE_PASSWORD": chPassword,
	}
	out, errOut, err := run(t, env, "config", "check", "--print")
	if err != nil {
		t.Fatalf("config check: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, adminTokenFile) {
		t.Errorf("config check --print does not name admin.token_file:\n%s", out)
	}
	noSecrets(t, "config check --print", out+errOut, secrets...)

	srv := testenv.ClickHouse(t)
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 1, "vigil.dlq": 1, "vigil.actions": 1})
	common := []string{
		"VIGIL_LOG_LEVEL=debug", "VIGIL_CLICKHOUSE_ADDR=" + srv.Addr(), "VIGIL_CLICKHOUSE_DATABASE=" + testenv.Database(t),
		"VIGIL_KAFKA_BROKERS=" + strings.Join(brokers, ","), "VIGIL_ADMIN_TOKEN_FILE=" + adminTokenFile,
		"VIGIL_REVOKE_ADAPTER_KIND=http", "VIGIL_REVOKE_ADAPTER_URL=https://sessions.invalid", "VIGIL_REVOKE_ADAPTER_TOKEN_FILE=" + apiTokenFile,
	}

	// A password ClickHouse refuses: vigil keeps retrying and says why.
	p := startVigil(t, append(common, "VIGIL_CLICKHOUSE_PASSWORD="+chPassword))
	testenv.WaitFor(t, time.Minute, "vigil logs ClickHouse refusing the password", func() (bool, string) {
		s := strings.ToLower(p.out.String())
		return strings.Contains(s, "password") || strings.Contains(s, "authentication"), p.out.String()
	})
	if code, _ := p.get("/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the admin token: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics with the admin token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	p.terminate(t, 30*time.Second)
	noSecrets(t, "vigil run with a refused ClickHouse password", p.out.String(), secrets...)

	// SASL that the broker does not offer: vigil fails at start and says why.
	p = startVigil(t, append(common, "VIGIL_KAFKA_SASL_MECHANISM=plain", "VIGIL_KAFKA_SASL_USERNAME=vigil", "VIGIL_KAFKA_SASL_PASSWORD_FILE="+saslFile))
	select {
	case err := <-p.done:
		p.exited = true
		if err == nil {
			t.Errorf("vigil run with SASL against a broker without it exited 0:\n%s", p.out.String())
		}
	case <-time.After(2 * time.Minute):
		p.terminate(t, 30*time.Second)
	}
	if !strings.Contains(strings.ToLower(p.out.String()), "sasl") {
		t.Errorf("vigil run with SASL refused does not say SASL:\n%s", p.out.String())
	}
	noSecrets(t, "vigil run with SASL refused", p.out.String(), secrets...)
}
