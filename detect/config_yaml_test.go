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
			want: &detect.Config{
				StateTTL:       720 * time.Hour,
				RebuildHorizon: 0,
				RebuildTimeout: 30 * time.Second,
				TokenReuse:     detect.TokenReuseConfig{Enabled: false, Shadow: true, Leeway: 500 * time.Millisecond, RealertAfter: 0},
				SessionHijack: detect.SessionHijackConfig{
					Enabled: false, Shadow: true, Window: 2*time.Minute + 30*time.Second, MaxTravelKMH: 850.5, RealertAfter: time.Hour,
				},
				UseAfterRevocation: detect.UseAfterRevocationConfig{Enabled: false, Shadow: true, Grace: 30 * time.Second},
			},
		},
		{
			name: "good.yaml with env overrides",
			file: "good.yaml",
			env: map[string]string{
				"VIGIL_DETECT_SESSION_HIJACK_MAX_TRAVEL_KMH": "1200",
				"VIGIL_DETECT_TOKEN_REUSE_ENABLED":           "true",
			},
			want: &detect.Config{
				StateTTL:       720 * time.Hour,
				RebuildHorizon: 0,
				RebuildTimeout: 30 * time.Second,
				TokenReuse:     detect.TokenReuseConfig{Enabled: true, Shadow: true, Leeway: 500 * time.Millisecond, RealertAfter: 0},
				SessionHijack: detect.SessionHijackConfig{
					Enabled: false, Shadow: true, Window: 2*time.Minute + 30*time.Second, MaxTravelKMH: 1200, RealertAfter: time.Hour,
				},
				UseAfterRevocation: detect.UseAfterRevocationConfig{Enabled: false, Shadow: true, Grace: 30 * time.Second},
			},
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
