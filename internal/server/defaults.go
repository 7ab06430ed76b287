package server

import "cmp"

// orDefault sets *v to d when *v is zero or negative: most settings
// (timeouts, counts, budgets) take their default for any value below one.
// Settings where a negative value means something (off, unlimited) use
// cmp.Or instead, which replaces only the zero value.
func orDefault[T cmp.Ordered](v *T, d T) {
	var zero T
	if *v <= zero {
		*v = d
	}
}
