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

// TestArrays: textArray, int64Array and timeArray reach PostgreSQL as the
// arrays plain slices make (elements in order; empty; nil as NULL), and
// pgx encodes them without an allocation per element (a plain slice costs
// one per element: the test fails with plain slices in encoded).
func TestArrays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	roundTrip := func(query string, arg, out any) (null bool) {
		t.Helper()
		if err := conn.QueryRow(ctx, query, arg).Scan(out, &null); err != nil {
			t.Fatal(err)
		}
		return null
	}
	for _, in := range [][]string{{"a", "", "ü😀", `q"u,o{t}e\`, "NULL"}, {}, nil} {
		var out []string
		if null := roundTrip("SELECT $1::text[], $1::text[] IS NULL", textArray(in), &out); null != (in == nil) || !slices.Equal(out, in) {
			t.Errorf("text %q: got %q (NULL %v)", in, out, null)
		}
	}
	for _, in := range [][]int64{{0, -1, 255, 256, 1 << 40, -1 << 63}, {}, nil} {
		var out []int64
		if null := roundTrip("SELECT $1::bigint[], $1::bigint[] IS NULL", int64Array(in), &out); null != (in == nil) || !slices.Equal(out, in) {
			t.Errorf("bigint %v: got %v (NULL %v)", in, out, null)
		}
	}
	now := time.Now().Truncate(time.Microsecond)
	for _, in := range [][]time.Time{{now, now.Add(-time.Hour), time.Unix(0, 0)}, {}, nil} {
		var out []time.Time
		null := roundTrip("SELECT $1::timestamptz[], $1::timestamptz[] IS NULL", timeArray(in), &out)
		if null != (in == nil) || !slices.EqualFunc(out, in, time.Time.Equal) {
			t.Errorf("timestamptz %v: got %v (NULL %v)", in, out, null)
		}
	}

	const n = 100
	texts, ints, times := make([]string, n), make([]int64, n), make([]time.Time, n)
	for i := range n {
		texts[i], ints[i], times[i] = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", int64(1000+i), now
	}
	encoded := []struct {
		oid uint32
		arg any
	}{{pgtype.TextArrayOID, textArray(texts)}, {pgtype.Int8ArrayOID, int64Array(ints)}, {pgtype.TimestamptzArrayOID, timeArray(times)}}
	m := pgtype.NewMap()
	buf := make([]byte, 0, 1<<13)
	for _, c := range encoded {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.arg, buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs >= n/10 {
			t.Errorf("%T: %v allocations to encode %d elements, want fewer than %d", c.arg, allocs, n, n/10)
		}
	}
}
