package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// File is the layout of an SLO file: `slos:` and a list of specs.
type File struct {
	// SLOs are the objectives, replacing the defaults.
	SLOs []Spec `yaml:"slos"`
}

// Load reads an SLO file. Unknown fields are errors; every spec error
// names the file, the line of the spec, the SLO and the field.
func Load(path string) ([]Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("slo file: %w", err)
	}
	return Parse(b, path)
}

// Configured returns the SLOs of the file at path, or the seed SLOs when
// path is "" (the slo.spec_file config key).
func Configured(path string) ([]Spec, error) {
	if path == "" {
		return Defaults(), nil
	}
	return Load(path)
}

// Parse is Load on bytes; name labels the errors.
func Parse(b []byte, name string) ([]Spec, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no SLOs: the file is empty", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(f.SLOs) == 0 {
		return nil, fmt.Errorf("%s: no SLOs under slos:", name)
	}
	// The line of each spec, for the errors.
	var lines struct {
		SLOs []yaml.Node `yaml:"slos"`
	}
	_ = yaml.Unmarshal(b, &lines)
	var errs []error
	for i := range f.SLOs {
		line := 0
		if i < len(lines.SLOs) {
			line = lines.SLOs[i].Line
		}
		for _, err := range unjoin(Validate(f.SLOs[i : i+1])) {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, line, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := Validate(f.SLOs); err != nil { // across specs: duplicate names
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f.SLOs, nil
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
