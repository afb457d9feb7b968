package detect

import (
	"testing"

	"github.com/pariz/gountries"
)

// TestCentroidsGenerated checks centroids.go against the dataset it is
// generated from (go generate ./detect rewrites it).
func TestCentroidsGenerated(t *testing.T) {
	n := 0
	for _, c := range gountries.New().FindAllCountries() {
		code := c.Codes.Alpha2
		if len(code) != 2 {
			continue
		}
		n++
		got, ok := centroidDegrees[[2]byte{code[0], code[1]}]
		if want := [2]float64{c.Coordinates.Latitude, c.Coordinates.Longitude}; !ok || got != want {
			t.Errorf("%s: centroids.go has %v (present %v), the dataset %v; run go generate ./detect", code, got, ok, want)
		}
	}
	if n != len(centroidDegrees) || n < 240 {
		t.Errorf("centroids.go has %d countries, the dataset %d", len(centroidDegrees), n)
	}
}
