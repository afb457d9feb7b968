package dashboards_test

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vigilhq/vigil/dashboards"
)

// TestFileProvisioning: deploy/grafana provisions the datasources under the
// uids, names and types the dashboards select, and the dashboards from a
// directory.
func TestFileProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type string
			JSONData        map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	read(t, "../deploy/grafana/provisioning/datasources/vigil.yaml", &ds)
	want := map[string][2]string{
		dashboards.PrometheusUID: {dashboards.PrometheusName, dashboards.PrometheusType},
		dashboards.ClickHouseUID: {dashboards.ClickHouseName, dashboards.ClickHouseType},
	}
	if ds.APIVersion != 1 || len(ds.Datasources) != len(want) {
		t.Fatalf("datasources file: %+v", ds)
	}
	for _, d := range ds.Datasources {
		if w, ok := want[d.UID]; !ok || w[0] != d.Name || w[1] != d.Type {
			t.Errorf("datasource %s %q (%s), want one of %v", d.UID, d.Name, d.Type, want)
		}
		if d.Type == dashboards.ClickHouseType && d.JSONData["defaultDatabase"] == nil {
			t.Error("the ClickHouse datasource has no defaultDatabase: the dashboards' queries name tables without a database")
		}
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string
			Options struct{ Path string }
		} `yaml:"providers"`
	}
	read(t, "../deploy/grafana/provisioning/dashboards/vigil.yaml", &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options.Path == "" {
		t.Errorf("dashboards file: %+v", dp)
	}
}

func read(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
