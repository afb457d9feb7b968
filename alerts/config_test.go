package alerts_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/alerts"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/testenv"
)

// TestConfigYAML loads the `alerts:` section through the real config loader.
func TestConfigYAML(t *testing.T) {
	good := alerts.Config{
		Alertmanagers: []string{"https://am-0.internal:9093", "https://am-1.internal:9093"}, AllowHTTP: true,
		Username: "vigil", PasswordFile: "testdata/secrets/am-password", Timeout: 5 * time.Second, ResendInterval: 30 * time.Second,
		Hold: 20 * time.Minute, MinSeverity: "high", Shadow: true, SubjectLabels: true,
		RunbookURL: "https://wiki.internal/runbooks", GrafanaURL: "https://grafana.internal",
	}
	tests := []struct {
		file    string
		want    *alerts.Config
		wantErr []string
	}{
		{file: "good.yaml", want: &good},
		{file: "bad.yaml", wantErr: []string{
			`testdata/bad.yaml:3: alerts.alertmanagers[0]: must be an Alertmanager base URL such as https://alertmanager:9093, got "am-0:9093"`,
			`testdata/bad.yaml:4: alerts.timeout: must be between 100ms and 1m, got 0s`,
			`testdata/bad.yaml:5: alerts.resend_interval: must be between 1s and 4m`,
			`testdata/bad.yaml:6: alerts.hold: must be between resend_interval (10m0s) and 24h, so every alert lives long enough to be posted; got -1m0s`,
			`testdata/bad.yaml:7: alerts.min_severity: must be info, low, medium, high or critical, got "severe"`,
		}},
		{file: "misspelled.yaml", wantErr: []string{
			`testdata/misspelled.yaml:3: unknown key "alerts.alertmanager" (did you mean "alerts.alertmanagers"?)`,
			`testdata/misspelled.yaml:4: unknown key "alerts.resend"`,
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			got, err := config.Load(filepath.Join("testdata", tt.file), nil)
			if tt.want == nil {
				testenv.WantErrorLines(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got.Alerts, *tt.want) {
				t.Errorf("alerts config\n got: %+v\nwant: %+v", got.Alerts, *tt.want)
			}
		})
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}
}
