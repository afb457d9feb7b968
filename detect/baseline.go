package detect

import (
	"math"
	"slices"
)

// madScale turns a median absolute deviation into an estimate of the
// standard deviation of normally distributed data.
const madScale = 1.4826

// MedianMAD returns the median of xs and their median absolute deviation
// from it; both are 0 for no samples. xs is not modified.
func MedianMAD(xs []float64) (median, mad float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	median = middle(s)
	for i, x := range s {
		s[i] = math.Abs(x - median)
	}
	slices.Sort(s)
	return median, middle(s)
}

func middle(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Baseline is what a fleet-wide series normally looks like, and the
// threshold a new value must reach to be a surge.
type Baseline struct {
	// Samples is the number of past buckets it rests on.
	Samples int `json:"samples"`
	// Median and MAD summarise them; both 0 when there are too few.
	Median float64 `json:"median"`
	MAD    float64 `json:"mad"`
	// Threshold is the smallest value judged a surge: the floor, and, with
	// enough history, median + MADs × 1.4826 × MAD and MinRatio × median.
	Threshold float64 `json:"threshold"`
	// Floor is the absolute floor that applies either way.
	Floor float64 `json:"floor"`
	// Missing is set when there were fewer samples than MinSamples: only the floor applies.
	Missing bool `json:"missing,omitempty"`
}

// Judge returns the baseline of the past buckets samples under floor.
func (c BaselineConfig) Judge(samples []float64, floor float64) Baseline {
	b := Baseline{Samples: len(samples), Floor: floor, Threshold: floor}
	if len(samples) < c.MinSamples || len(samples) == 0 {
		b.Missing = true
		return b
	}
	b.Median, b.MAD = MedianMAD(samples)
	b.Threshold = max(floor, b.Median+c.MADs*madScale*b.MAD, c.MinRatio*b.Median)
	return b
}

// Exceeded reports whether v is a surge over b.
func (b Baseline) Exceeded(v float64) bool { return v >= b.Threshold }
