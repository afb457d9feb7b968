package queries_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilhq/vigil/schemas/queries"
)

// TestFiles: every named query has a doc, typed and documented
// parameters, and unqualified table names (so it runs in any database).
func TestFiles(t *testing.T) {
	all, err := queries.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 12 {
		t.Errorf("%d named queries", len(all))
	}
	for _, q := range all {
		if len(q.Doc) < 40 {
			t.Errorf("%s: doc %q too short", q.Name, q.Doc)
		}
		if len(q.Params) == 0 {
			t.Errorf("%s: no parameters", q.Name)
		}
		for _, p := range q.Params {
			if p.Doc == "" {
				t.Errorf("%s: parameter %s undocumented", q.Name, p.Name)
			}
		}
		for _, bad := range []string{"vigil.", "${db}", "@"} {
			if strings.Contains(q.SQL, bad) {
				t.Errorf("%s: contains %q: tables stay unqualified and parameters are {name:Type}", q.Name, bad)
			}
		}
	}
}

// TestBind: parameters become clickhouse-go named parameters with typed
// values; missing, unknown and malformed values are errors that name them.
func TestBind(t *testing.T) {
	q, err := queries.Get("asn_sightings")
	if err != nil {
		t.Fatal(err)
	}
	sql, args, err := q.Bind(map[string]string{"asn": "14061", "from": "2026-11-20T14:00:00+01:00", "to": "2026-11-20 15:00:00"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sql, "{asn:UInt32}") || !strings.Contains(sql, "asn = @asn") {
		t.Errorf("placeholders not rewritten:\n%s", sql)
	}
	want := map[string]any{"asn": uint32(14061), "from": time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC), "to": time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)}
	if len(args) != 3 {
		t.Fatalf("args = %v", args)
	}
	for _, a := range args {
		n, ok := a.(driverNamed)
		if !ok {
			t.Fatalf("arg %T is not a named parameter", a)
		}
		if w := want[n.Name]; w != n.Value {
			t.Errorf("%s = %#v, want %#v", n.Name, n.Value, w)
		}
	}
	for _, c := range []struct {
		values map[string]string
		want   string
	}{
		{map[string]string{"asn": "1", "from": "2026-11-20"}, "no value for parameter to"},
		{map[string]string{"asn": "-1", "from": "2026-11-20", "to": "2026-11-21"}, `parameter asn: "-1" is not a UInt32`},
		{map[string]string{"asn": "1", "from": "soon", "to": "2026-11-21"}, `parameter from: "soon" is not a time`},
		{map[string]string{"asn": "1", "from": "2026-11-20", "to": "2026-11-21", "ip": "x"}, "asn_sightings has no parameter ip"},
	} {
		if _, _, err := q.Bind(c.values); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Bind(%v) = %v, want %q", c.values, err, c.want)
		}
	}
	if _, err := queries.Get("nope"); err == nil || !strings.Contains(err.Error(), "have affected_subjects") {
		t.Errorf("Get(nope) = %v", err)
	}
}

type driverNamed = driver.NamedValue
