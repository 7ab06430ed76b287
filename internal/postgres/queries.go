package postgres

// PostgreSQL's own SQL; the rest is internal/sqlstore's (and the bulk
// sends', bulk.go).

const (
	// qHead reads shard $1's newest committed position; qHeads every
	// shard's, in shard order; qSetHeads moves some (args: shards,
	// heads), only under the positions lock (batch.go).
	// qLock takes one positions lock ($1: its key); qLocks several in one
	// statement, in the order of $1's keys (shard order: a function scan
	// of unnest returns the array's elements in order, and the aggregate
	// calls the lock for each row as it comes), instead of a statement
	// per shard.
	qLock  = `SELECT pg_advisory_xact_lock($1)`
	qLocks = `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`

	qHead     = `SELECT head FROM positions WHERE shard = $1`
	qHeads    = `SELECT COALESCE(array_agg(head ORDER BY shard), '{}') FROM positions`
	qHeadsOf  = `SELECT COALESCE(array_agg(head ORDER BY shard), '{}') FROM positions WHERE shard = ANY($1)`
	qSetHeads = `UPDATE positions p SET head = v.head
		FROM unnest($1::int[], $2::bigint[]) AS v(shard, head) WHERE p.shard = v.shard`
)
