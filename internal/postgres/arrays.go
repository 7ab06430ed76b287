package postgres

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// textArray, int64Array and timeArray are query arguments for text[],
// bigint[] and timestamptz[] parameters that pgx encodes without an
// allocation per element. A plain slice goes through pgtype.FlatArray,
// whose Index returns each element as an any: one allocation per element
// (a string, a time.Time, an int64 of 256 or more), about fourteen per
// message in a batch's send statements. Here Index returns a pointer
// into the slice (no allocation), which pgx encodes through the
// element's Valuer interface. nil encodes as NULL, as a nil slice does.
type (
	textArray  []string
	int64Array []int64
	timeArray  []time.Time
)

// dims is an array argument's dimensions, as pgtype.FlatArray gives them.
func dims(n int, null bool) []pgtype.ArrayDimension {
	if null {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(n), LowerBound: 1}}
}

func (a textArray) Dimensions() []pgtype.ArrayDimension { return dims(len(a), a == nil) }
func (a textArray) Index(i int) any                     { return (*textElem)(&a[i]) }
func (a textArray) IndexType() any                      { return (*textElem)(nil) }

func (a int64Array) Dimensions() []pgtype.ArrayDimension { return dims(len(a), a == nil) }
func (a int64Array) Index(i int) any                     { return (*int64Elem)(&a[i]) }
func (a int64Array) IndexType() any                      { return (*int64Elem)(nil) }

func (a timeArray) Dimensions() []pgtype.ArrayDimension { return dims(len(a), a == nil) }
func (a timeArray) Index(i int) any                     { return (*timeElem)(&a[i]) }
func (a timeArray) IndexType() any                      { return (*timeElem)(nil) }

// The elements, encoded through pgtype's Valuer interfaces.
type (
	textElem  string
	int64Elem int64
	timeElem  time.Time
)

func (e *textElem) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*e), Valid: true}, nil
}

func (e *int64Elem) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*e), Valid: true}, nil
}

func (e *timeElem) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: time.Time(*e), Valid: true}, nil
}
