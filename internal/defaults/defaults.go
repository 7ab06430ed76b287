// Package defaults fills the unset fields of a configuration: every
// package's Config treats zero (and a negative value) as "the default".
package defaults

// Positive sets *p to d unless *p is positive.
func Positive[T ~int | ~int64 | ~float64](p *T, d T) {
	if *p <= 0 {
		*p = d
	}
}
