package main

import "time"

// histogram records round-trip times in 1 µs buckets up to 100 ms, larger
// ones in a last bucket, so recording never allocates and percentiles are
// exact to the microsecond. One goroutine records into each; merge them
// after.
type histogram struct {
	counts [100_000 + 1]uint32
	n      uint64
}

func (h *histogram) add(d time.Duration) {
	us := int(d / time.Microsecond)
	if us >= len(h.counts) {
		us = len(h.counts) - 1
	}
	h.counts[us]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// percentile returns the time, in µs, under which a fraction q of the
// samples fall; 0 when there are none.
func (h *histogram) percentile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return float64(i) + 0.5 // the middle of its bucket
		}
	}
	return float64(len(h.counts))
}
