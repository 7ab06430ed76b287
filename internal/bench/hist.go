package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets, HDR style: values
// below 128 ns are exact and every larger power of two is split into 64
// buckets, so a quantile is off by at most 1/64 (1.6%). Record is safe for
// concurrent use (atomic adds, no lock); the zero value is ready.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

const (
	histSub     = 64
	histExact   = 2 * histSub
	histBuckets = histExact + 57*histSub
)

func histIndex(v uint64) int {
	if v < histExact {
		return int(v)
	}
	e := bits.Len64(v) - 7 // >= 1
	m := v >> uint(e)      // in [64, 128)
	return histExact + (e-1)*histSub + int(m-histSub)
}

// histUpper is the largest value that falls in bucket i.
func histUpper(i int) uint64 {
	if i < histExact {
		return uint64(i)
	}
	e := (i-histExact)/histSub + 1
	m := uint64((i-histExact)%histSub + histSub)
	return (m+1)<<uint(e) - 1
}

// Record adds one sample. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		old := h.max.Load()
		if v <= old || h.max.CompareAndSwap(old, v) {
			break
		}
	}
}

// Snapshot copies the histogram into a mergeable, serialisable form.
func (h *Histogram) Snapshot() HistSnapshot {
	s := HistSnapshot{N: h.n.Load(), SumNS: h.sum.Load(), MaxNS: h.max.Load()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return s
}

// HistSnapshot is a histogram copied out of a running recorder. Workers send
// it to the parent as JSON; Merge adds them up.
type HistSnapshot struct {
	N       uint64      `json:"n"`
	SumNS   uint64      `json:"sum_ns"`
	MaxNS   uint64      `json:"max_ns"`
	Buckets [][2]uint64 `json:"buckets,omitempty"` // (bucket index, count), ascending
}

// Merge adds o into s.
func (s *HistSnapshot) Merge(o HistSnapshot) {
	s.N += o.N
	s.SumNS += o.SumNS
	s.MaxNS = max(s.MaxNS, o.MaxNS)
	m := make(map[uint64]uint64, len(s.Buckets)+len(o.Buckets))
	for _, b := range s.Buckets {
		m[b[0]] += b[1]
	}
	for _, b := range o.Buckets {
		m[b[0]] += b[1]
	}
	s.Buckets = s.Buckets[:0]
	for i := range uint64(histBuckets) {
		if c := m[i]; c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{i, c})
		}
	}
}

// Quantile returns the value at quantile q (0..1), as the upper edge of its
// bucket (never above the recorded maximum). Zero when empty.
func (s HistSnapshot) Quantile(q float64) time.Duration {
	if s.N == 0 {
		return 0
	}
	rank := uint64(q*float64(s.N) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			return time.Duration(min(histUpper(int(b[0])), s.MaxNS))
		}
	}
	return time.Duration(s.MaxNS)
}

// Mean returns the average sample.
func (s HistSnapshot) Mean() time.Duration {
	if s.N == 0 {
		return 0
	}
	return time.Duration(s.SumNS / s.N)
}

// Summary is what reports show of a histogram.
type Summary struct {
	Count  uint64  `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Summary reduces the snapshot to the figures reports print.
func (s HistSnapshot) Summary() Summary {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Summary{
		Count:  s.N,
		MeanMS: ms(s.Mean()),
		P50MS:  ms(s.Quantile(0.50)),
		P99MS:  ms(s.Quantile(0.99)),
		P999MS: ms(s.Quantile(0.999)),
		MaxMS:  ms(time.Duration(s.MaxNS)),
	}
}
