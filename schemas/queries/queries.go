// Package queries holds vigil's named postmortem queries: one documented
// .sql file each, with ClickHouse query parameters ({name:Type}), runnable
// as they are with `clickhouse-client --param_name=…` on current ClickHouse
// and through vigil on every supported version, 18.16 included, which has
// no server-side parameters (Bind rewrites them to clickhouse-go's
// client-side bound parameters).
//
// A file starts with comment lines: first what the query answers, then one
// line per parameter, "-- {name:Type} what it is". Table names are
// unqualified: run them in vigil's database (clickhouse-client -d vigil).
package queries

import (
	"embed"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

//go:embed *.sql
var files embed.FS

// Query is one named query.
type Query struct {
	// Name is the file name without .sql, e.g. timeline.
	Name string
	// Doc is what the query answers, from its leading comment.
	Doc string
	// Params are its parameters in order of first use.
	Params []Param
	// SQL is the file's text, comments included.
	SQL string
}

// Param is one {name:Type} parameter of a query.
type Param struct {
	// Name and Type are as written in the placeholder, e.g. subject, String.
	Name, Type string
	// Doc says what it is, from the query's comment.
	Doc string
}

// placeholder is a ClickHouse query parameter, {name:Type}.
var placeholder = regexp.MustCompile(`\{(\w+):(\w+)\}`)

// paramDoc is a comment line documenting a parameter.
var paramDoc = regexp.MustCompile(`^--\s*\{(\w+):(\w+)\}\s+(.*)$`)

// types are the parameter types Bind can convert a value to.
var types = map[string]bool{"String": true, "DateTime": true, "UInt32": true, "UInt64": true, "Int64": true, "Float64": true}

// All returns every named query, sorted by name.
func All() ([]Query, error) {
	ents, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	out := make([]Query, 0, len(ents))
	for _, e := range ents {
		q, err := parse(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// Get returns the named query.
func Get(name string) (Query, error) {
	q, err := parse(name + ".sql")
	if err != nil {
		all, _ := All()
		names := make([]string, 0, len(all))
		for _, q := range all {
			names = append(names, q.Name)
		}
		return Query{}, fmt.Errorf("queries: no query %q (have %s)", name, strings.Join(names, ", "))
	}
	return q, nil
}

func parse(file string) (Query, error) {
	b, err := files.ReadFile(file)
	if err != nil {
		return Query{}, err
	}
	q := Query{Name: strings.TrimSuffix(path.Base(file), ".sql"), SQL: string(b)}
	docs := map[string]string{}
	var doc []string
	for _, line := range strings.Split(q.SQL, "\n") {
		if !strings.HasPrefix(line, "--") {
			break
		}
		if m := paramDoc.FindStringSubmatch(line); m != nil {
			docs[m[1]] = m[3]
			continue
		}
		doc = append(doc, strings.TrimSpace(strings.TrimPrefix(line, "--")))
	}
	q.Doc = strings.Join(doc, " ")
	for _, m := range placeholder.FindAllStringSubmatch(q.SQL, -1) {
		if slices.ContainsFunc(q.Params, func(p Param) bool { return p.Name == m[1] }) {
			continue
		}
		if !types[m[2]] {
			return Query{}, fmt.Errorf("queries: %s: parameter %s has type %s, not one of String, DateTime, UInt32, UInt64, Int64, Float64", file, m[1], m[2])
		}
		if docs[m[1]] == "" {
			return Query{}, fmt.Errorf("queries: %s: parameter %s is not documented (-- {%s:%s} what it is)", file, m[1], m[1], m[2])
		}
		q.Params = append(q.Params, Param{Name: m[1], Type: m[2], Doc: docs[m[1]]})
	}
	return q, nil
}

// Bind returns q's SQL for clickhouse-go and its bound arguments: every
// {name:Type} becomes @name, bound to the value converted to Type. Values
// are given as text (DateTime as RFC 3339 or "2006-01-02 15:04:05" UTC);
// every parameter must have one and no unknown one may be given. The
// values are never spliced into the text: clickhouse-go quotes and escapes
// them.
func (q Query) Bind(values map[string]string) (string, []any, error) {
	args := make([]any, 0, len(q.Params))
	for _, p := range q.Params {
		v, ok := values[p.Name]
		if !ok {
			return "", nil, fmt.Errorf("queries: %s: no value for parameter %s (%s)", q.Name, p.Name, p.Doc)
		}
		typed, err := convert(p.Type, v)
		if err != nil {
			return "", nil, fmt.Errorf("queries: %s: parameter %s: %w", q.Name, p.Name, err)
		}
		args = append(args, clickhouse.Named(p.Name, typed))
	}
	for k := range values {
		if !slices.ContainsFunc(q.Params, func(p Param) bool { return p.Name == k }) {
			return "", nil, fmt.Errorf("queries: %s has no parameter %s", q.Name, k)
		}
	}
	return placeholder.ReplaceAllString(q.SQL, "@$1"), args, nil
}

// convert parses a parameter value given as text.
func convert(typ, v string) (any, error) {
	switch typ {
	case "String":
		return v, nil
	case "DateTime":
		t, err := ParseTime(v)
		if err != nil {
			return nil, err
		}
		return t.UTC().Truncate(time.Second), nil
	case "UInt32":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a UInt32", v)
		}
		return uint32(n), nil
	case "UInt64":
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a UInt64", v)
		}
		return n, nil
	case "Int64":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an Int64", v)
		}
		return n, nil
	default: // Float64
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a Float64", v)
		}
		return f, nil
	}
}

// ParseTime reads a time as RFC 3339 (2026-11-20T14:00:00Z, with an offset
// or fractional seconds) or as "2006-01-02 15:04:05" or "2006-01-02" in UTC.
func ParseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339, e.g. 2026-11-20T14:00:00Z, or 2026-11-20 14:00:00 UTC)", v)
}

// ValidIP reports whether v is an IPv4 or IPv6 address, as stored.
func ValidIP(v string) bool { _, err := netip.ParseAddr(v); return err == nil }
