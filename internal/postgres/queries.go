package postgres

// PostgreSQL's own SQL; the rest is internal/sqlstore's (and the bulk
// sends', bulk.go).

const (
	// qHead reads shard $1's newest committed position; qHeads every
	// shard's, in shard order; qSetHeads moves some (args: shards,
	// heads), only under the positions lock (batch.go).
	qHead     = `SELECT head FROM positions WHERE shard = $1`
	qHeads    = `SELECT COALESCE(array_agg(head ORDER BY shard), '{}') FROM positions`
	qHeadsOf  = `SELECT COALESCE(array_agg(head ORDER BY shard), '{}') FROM positions WHERE shard = ANY($1)`
	qSetHeads = `UPDATE positions p SET head = v.head
		FROM unnest($1::int[], $2::bigint[]) AS v(shard, head) WHERE p.shard = v.shard`
)
