package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// TestTextArray: a textArray reaches PostgreSQL as the text[] a []string
// makes (elements in order, empty strings, multi-byte text; nil as NULL),
// and pgx encodes it without an allocation per element (a []string costs
// one per element: fails with textArray replaced by []string).
func TestTextArray(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, in := range [][]string{{"a", "", "ü😀", `q"u,o{t}e\`, "NULL"}, {}, nil} {
		var out []string
		var isNull bool
		if err := conn.QueryRow(ctx, "SELECT $1::text[], $1::text[] IS NULL", textArray(in)).Scan(&out, &isNull); err != nil {
			t.Fatal(err)
		}
		if isNull != (in == nil) || !slices.Equal(out, in) {
			t.Errorf("%q: got %q (NULL %v)", in, out, isNull)
		}
	}

	m := pgtype.NewMap()
	arr := make(textArray, 100)
	for i := range arr {
		arr[i] = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	}
	buf := make([]byte, 0, 1<<13)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := m.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, arr, buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 10 {
		t.Errorf("%v allocations to encode 100 elements, want fewer than 10", allocs)
	}
}
