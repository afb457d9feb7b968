package dashboards

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// ClickHouseQuery is a target of the grafana-clickhouse-datasource plugin
// (v4 query model) in its SQL editor: rawSql with the plugin's macros,
// format and queryType. The Foundation SDK has no type for this plugin.
type ClickHouseQuery struct {
	RefID      string                `json:"refId"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	EditorType string                `json:"editorType"`
	RawSQL     string                `json:"rawSql"`
	// Format is the plugin's result format: 0 time series, 1 table.
	Format    int    `json:"format"`
	QueryType string `json:"queryType"`
}

// Plugin result formats and query types.
const (
	formatTimeSeries = 0
	formatTable      = 1
)

// ImplementsDataqueryVariant marks ClickHouseQuery as a panel target.
func (*ClickHouseQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (*ClickHouseQuery) DataqueryType() string { return ClickHouseType }

// Validate reports a target without SQL.
func (q *ClickHouseQuery) Validate() error {
	if strings.TrimSpace(q.RawSQL) == "" {
		return fmt.Errorf("dashboards: ClickHouse target %s has no SQL", q.RefID)
	}
	return nil
}

// Equals compares two targets.
func (q *ClickHouseQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(*ClickHouseQuery)
	return ok && o.RefID == q.RefID && o.RawSQL == q.RawSQL && o.Format == q.Format && o.QueryType == q.QueryType
}

// clickHouseBuilder builds a ClickHouseQuery.
type clickHouseBuilder struct{ q ClickHouseQuery }

func (b *clickHouseBuilder) Build() (variants.Dataquery, error) {
	q := b.q
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return &q, nil
}

func clickHouse(sql string, format int, queryType string) *clickHouseBuilder {
	ref := dsRef(ClickHouseType, ClickHouseVar)
	return &clickHouseBuilder{ClickHouseQuery{Datasource: &ref, EditorType: "sql", RawSQL: strings.TrimSpace(sql), Format: format, QueryType: queryType}}
}

// chSeries is a time-series target: a time column, a value column per
// series or a string column naming the series (long format).
func chSeries(sql string) *clickHouseBuilder { return clickHouse(sql, formatTimeSeries, "timeseries") }

// chTable is a table target.
func chTable(sql string) *clickHouseBuilder { return clickHouse(sql, formatTable, "table") }

// bucket is the time column of a time series: the event time rounded down
// to the panel's interval. The plugin's $__timeInterval expands to
// toStartOfInterval, which ClickHouse 18.16 lacks; this form works on every
// version.
func bucket(col string) string {
	return "toDateTime(intDiv(toUInt32(" + col + "), $__interval_s) * $__interval_s) AS t"
}

// Range is the dashboard time range and interval a query is expanded for.
type Range struct {
	From, To time.Time
	// Interval is the panel's $__interval (at least 1s).
	Interval time.Duration
}

var macro = regexp.MustCompile(`\$__(timeFilter|timeInterval|fromTime|toTime|interval_s)\b(\(([^)]*)\))?`)

var variable = regexp.MustCompile(`\$\{(\w+)(:\w+)?\}|\$(\w+)`)

// Expand replaces the plugin's macros the way grafana-clickhouse-datasource
// does ($__timeFilter, $__timeInterval, $__fromTime, $__toTime,
// $__interval_s) and the dashboard variables with vars, for checking a
// query outside Grafana; an unknown variable is an error.
func Expand(sql string, r Range, vars map[string]string) (string, error) {
	secs := max(int64(r.Interval/time.Second), 1)
	var err error
	out := macro.ReplaceAllStringFunc(sql, func(m string) string {
		g := macro.FindStringSubmatch(m)
		arg := strings.TrimSpace(g[3])
		switch g[1] {
		case "timeFilter":
			return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", arg, r.From.Unix(), arg, r.To.Unix())
		case "timeInterval":
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", arg, secs)
		case "fromTime":
			return fmt.Sprintf("toDateTime(%d)", r.From.Unix())
		case "toTime":
			return fmt.Sprintf("toDateTime(%d)", r.To.Unix())
		default: // interval_s
			return strconv.FormatInt(secs, 10) + g[2]
		}
	})
	out = variable.ReplaceAllStringFunc(out, func(m string) string {
		g := variable.FindStringSubmatch(m)
		name := g[1] + g[3]
		v, ok := vars[name]
		if !ok {
			err = fmt.Errorf("dashboards: no value for variable %q in %q", name, sql)
		}
		switch g[2] {
		case "":
		case ":percentencode":
			v = percentEncode(v)
		default:
			err = fmt.Errorf("dashboards: variable format %q in %q is not expanded here", g[2], sql)
		}
		return v
	})
	return out, err
}

// percentEncode is Grafana's percentencode variable format
// (encodeURIComponentStrict): every byte but A-Z a-z 0-9 - _ . ~ as %XX.
func percentEncode(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
