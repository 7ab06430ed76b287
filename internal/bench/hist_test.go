package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	var samples []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		samples = append(samples, d)
		h.Record(d)
	}
	slices.Sort(samples)
	s := h.Snapshot()
	if s.N != uint64(len(samples)) {
		t.Fatalf("N = %d, want %d", s.N, len(samples))
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		want := samples[int(q*float64(len(samples)))-1]
		got := s.Quantile(q)
		if diff := float64(got-want) / float64(want); diff < -0.02 || diff > 0.02 {
			t.Errorf("q%.3f = %v, want %v within 2%%", q, got, want)
		}
	}
	if got := s.Quantile(1); got != samples[len(samples)-1] {
		t.Errorf("max quantile = %v, want %v", got, samples[len(samples)-1])
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b Histogram
	for i := range 1000 {
		a.Record(time.Duration(i) * time.Microsecond)
		b.Record(time.Duration(i+1000) * time.Microsecond)
	}
	s := a.Snapshot()
	s.Merge(b.Snapshot())
	if s.N != 2000 {
		t.Fatalf("N = %d, want 2000", s.N)
	}
	if got := s.Quantile(0.5); got < 980*time.Microsecond || got > 1020*time.Microsecond {
		t.Errorf("median of merged = %v, want about 1ms", got)
	}
}

func TestHistIndexRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 1000, 1 << 20, 1<<40 + 12345, 1 << 62} {
		i := histIndex(v)
		if up := histUpper(i); up < v {
			t.Errorf("histUpper(histIndex(%d)) = %d, below the value", v, up)
		}
		if i > 0 && histUpper(i-1) >= v {
			t.Errorf("value %d also fits bucket %d", v, i-1)
		}
	}
}
