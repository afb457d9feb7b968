package detect_test

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/testenv"
)

// good is the config testdata/good.yaml describes: every key off its default.
func good() *detect.Config {
	return &detect.Config{
		StateTTL:       720 * time.Hour,
		RebuildHorizon: 0,
		RebuildTimeout: 30 * time.Second,
		TokenReuse:     detect.TokenReuseConfig{Enabled: false, Shadow: true, Leeway: 500 * time.Millisecond, RealertAfter: 0},
		SessionHijack: detect.SessionHijackConfig{
			Enabled: false, Shadow: true, Window: 2*time.Minute + 30*time.Second, MaxTravelKMH: 850.5, RealertAfter: time.Hour,
		},
		UseAfterRevocation: detect.UseAfterRevocationConfig{Enabled: false, Shadow: true, Grace: 30 * time.Second},
		Window: detect.WindowConfig{
			Interval: 10 * time.Second, Lateness: 30 * time.Second, IdleAfter: 2 * time.Minute, CatchUp: time.Hour, RealertAfter: 15 * time.Minute,
			AllowCIDRs: []string{"12.153.224.0/24", "2001:db8:1::/48"}, AllowUsers: []string{"synthetic-monitor"},
			Baseline: detect.BaselineConfig{Recent: 2 * time.Hour, Days: 14, MinSamples: 30, MADs: 8, MinRatio: 4},
		},
		LoginStorm: detect.LoginStormConfig{
			Enabled: false, Shadow: true,
			Stuffing:    detect.StuffingConfig{Window: 5 * time.Minute, MinTargets: 50, MinFailureRatio: 0.9, MaxAttemptsPerTarget: 2},
			Distributed: detect.DistributedConfig{Window: 10 * time.Minute, MinSources: 10, MinTargets: 100, MinFailures: 200, MinFailureRatio: 0.95},
			BruteForce:  detect.BruteForceConfig{Window: 10 * time.Minute, MinFailures: 50, MinSources: 10},
			Reconnect:   detect.ReconnectConfig{Window: 2 * time.Minute, MinLogins: 100, Lookback: 30 * time.Minute, RoutineEndReasons: []string{"logout"}},
		},
		SessionChurn: detect.SessionChurnConfig{
			Enabled: false, Shadow: true,
			EndBurst:      detect.EndBurstConfig{Window: 2 * time.Minute, MinEnds: 500},
			ShortSessions: detect.ShortSessionsConfig{Window: 10 * time.Minute, MaxLifetime: 30 * time.Second, MinSessions: 100, MinShare: 0.7},
			SessionFlood:  detect.SessionFloodConfig{Window: 30 * time.Minute, MinSessions: 50},
			RefreshLoop:   detect.RefreshLoopConfig{Window: 10 * time.Minute, MinRefreshes: 100},
		},
	}
}

// TestConfigYAML loads the `detect:` section through the real config loader,
// which decodes it, applies VIGIL_* overrides and validates it with the rest
// of the file.
func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name    string // defaults to file
		file    string
		env     map[string]string
		want    *detect.Config // nil when an error is expected
		wantErr []string       // one substring per error line, in order
	}{
		{
			file: "good.yaml",
			want: good(),
		},
		{
			name: "good.yaml with env overrides",
			file: "good.yaml",
			env: map[string]string{
				"VIGIL_DETECT_SESSION_HIJACK_MAX_TRAVEL_KMH": "1200",
				"VIGIL_DETECT_TOKEN_REUSE_ENABLED":           "true",
			},
			want: func() *detect.Config {
				c := good()
				c.SessionHijack.MaxTravelKMH = 1200
				c.TokenReuse.Enabled = true
				return c
			}(),
		},
		{
			file: "bad.yaml",
			wantErr: []string{
				`testdata/bad.yaml:3: detect.state_ttl: must be between 1m and `,
				`testdata/bad.yaml:4: detect.rebuild_horizon: must be between 0 and state_ttl (30s), at most 288h0m0s, got -1h`,
				`testdata/bad.yaml:6: detect.token_reuse.leeway: must be between 0s and 1m, got 2m`,
				`testdata/bad.yaml:7: detect.token_reuse.realert_after: must be between 0s and 24h`,
				`testdata/bad.yaml:9: detect.session_hijack.window: must be between 1s and 24h`,
				`testdata/bad.yaml:10: detect.session_hijack.max_travel_kmh: must be positive, got 0`,
				`testdata/bad.yaml:11: detect.session_hijack.realert_after: must be between 0s and 24h`,
				`testdata/bad.yaml:13: detect.use_after_revocation.grace: must be between 0s and 1h, got 2h`,
				`testdata/bad.yaml:15: detect.window.interval: must be whole seconds between 1s and 1m, got 1.5s`,
				`testdata/bad.yaml:16: detect.window.allow_cidrs[0]: not a CIDR prefix: "10.0.0.0/33"`,
				`testdata/bad.yaml:18: detect.window.baseline.min_ratio: must be at least 1, got 0.5`,
				`testdata/bad.yaml:21: detect.login_storm.stuffing.window: must be a multiple of window.interval (1.5s) up to 1h0m0s, got 7s`,
				`testdata/bad.yaml:23: detect.login_storm.distributed.min_sources: must be at least 2, got 1`,
				`testdata/bad.yaml:26: detect.session_churn.short_sessions.min_share: must be in (0, 1], got 1.5`,
			},
		},
		{
			file: "misspelled.yaml",
			wantErr: []string{
				`testdata/misspelled.yaml:3: unknown key "detect.state_tll" (did you mean "detect.state_ttl"?)`,
				`testdata/misspelled.yaml:4: unknown key "detect.leeway" (did you mean "detect.token_reuse.leeway"?)`,
				`testdata/misspelled.yaml:6: unknown key "detect.token_reuse.leway" (did you mean "detect.token_reuse.leeway"?)`,
				`testdata/misspelled.yaml:8: unknown key "detect.session_hijack.max_travel_kph" (did you mean "detect.session_hijack.max_travel_kmh"?)`,
				`testdata/misspelled.yaml:9: unknown key "detect.use_after_revokation" (did you mean "detect.use_after_revocation"?)`,
				`testdata/misspelled.yaml:11: unknown key "detect.login_strom" (did you mean "detect.login_storm"?)`,
				`testdata/misspelled.yaml:14: unknown key "detect.session_churn.end_brust" (did you mean "detect.session_churn.end_burst"?)`,
			},
		},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		name := tt.name
		if name == "" {
			name = tt.file
		}
		t.Run(name, func(t *testing.T) {
			var getenv func(string) (string, bool)
			if tt.env != nil {
				getenv = func(name string) (string, bool) { v, ok := tt.env[name]; return v, ok }
			}
			got, err := config.Load(filepath.Join("testdata", tt.file), getenv)
			if tt.want == nil {
				if got != nil {
					t.Errorf("got a config with the error")
				}
				testenv.WantErrorLines(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got.Detect, *tt.want) {
				t.Errorf("detect config\n got: %+v\nwant: %+v", got.Detect, *tt.want)
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

// TestConfigYAMLDefaults checks that a file without a `detect:` section gets DefaultConfig.
func TestConfigYAMLDefaults(t *testing.T) {
	for _, doc := range []string{"", "detect:\n", "detect: {}\n", "log:\n  level: warn\n"} {
		c, err := config.Parse([]byte(doc), "x.yaml", nil)
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if !reflect.DeepEqual(c.Detect, detect.DefaultConfig()) {
			t.Errorf("%q: got %+v, want the defaults", doc, c.Detect)
		}
	}
}
