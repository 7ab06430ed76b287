package postgres

import "github.com/jackc/pgx/v5/pgtype"

// textArray is a []string query argument for a text[] parameter that pgx
// encodes without an allocation per element: for a plain []string it
// goes through pgtype.FlatArray, whose Index returns each string as an
// any (one allocation each: about ten per message in a batch's send
// statements). Here Index returns a pointer into the slice (no
// allocation), which encodes as text through pgtype.TextValuer. nil
// encodes as NULL, as a nil []string does.
type textArray []string

func (a textArray) Dimensions() []pgtype.ArrayDimension {
	if a == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}

func (a textArray) Index(i int) any { return (*textElem)(&a[i]) }

func (a textArray) IndexType() any { return (*textElem)(nil) }

// textElem is an element of a textArray.
type textElem string

func (e *textElem) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*e), Valid: true}, nil
}
