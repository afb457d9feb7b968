package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvVars lists the environment variable of every key, in file order, with
// its default; it is derived from the struct tags, so new keys get one.
func EnvVars() []EnvVar {
	var out []EnvVar
	def := Default()
	forEachLeaf(reflect.ValueOf(&def).Elem(), "", func(key string, v reflect.Value) {
		out = append(out, EnvVar{Name: envName(key), Key: key, Default: formatValue(v)})
	})
	return out
}

// formatValue writes a leaf as it would be written in its environment variable.
func formatValue(v reflect.Value) string {
	if v.Type() == durationType {
		return fmtDuration(time.Duration(v.Int()))
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i))
		}
		return strings.Join(parts, ",")
	}
	panic(fmt.Sprintf("config: unsupported field type %s", v.Type()))
}

// fmtDuration formats d without trailing zero units: 5m rather than 5m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Redacted returns the effective configuration as YAML, safe to print because
// a Config holds no secrets, only the files and variables they are read from.
func (c *Config) Redacted() ([]byte, error) {
	root := toNode(reflect.ValueOf(c).Elem())
	root.HeadComment = "effective vigil configuration (defaults < file < VIGIL_* environment).\n" +
		"It holds no secrets: passwords are read from the *_file keys and " + ClickHousePasswordEnv + "."
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return []byte(b.String()), nil
}

// toNode builds the YAML node of a section or leaf.
func toNode(v reflect.Value) *yaml.Node {
	if isSection(v.Type()) {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range structFields(v.Type()) {
			m.Content = append(m.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.name},
				toNode(v.FieldByIndex(f.index)))
		}
		return m
	}
	if v.Kind() == reflect.Slice {
		s := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := 0; i < v.Len(); i++ {
			s.Content = append(s.Content, toNode(v.Index(i)))
		}
		return s
	}
	tag := "!!str"
	switch {
	case v.Type() == durationType, v.Kind() == reflect.String:
	case v.Kind() == reflect.Bool:
		tag = "!!bool"
	case v.CanInt(), v.CanUint():
		tag = "!!int"
	case v.CanFloat():
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: formatValue(v)}
}

// UnknownEnv returns the VIGIL_* names in environ ("NAME=value" entries)
// that configure nothing, e.g. a misspelled VIGIL_KAFKA_BROKRS, sorted.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{ClickHousePasswordEnv: true, "VIGIL_REQUIRE_SERVICES": true}
	for _, v := range EnvVars() {
		known[v.Name] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "VIGIL_") && !known[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
