package postgres

// PostgreSQL's own SQL; the rest is internal/sqlstore's (and the bulk
// sends', bulk.go).

const (
	// qHead reads the newest committed position; qSetHead moves it (only
	// under the positions lock, batch.go).
	qHead    = `SELECT head FROM positions WHERE id = 1`
	qSetHead = `UPDATE positions SET head = $1 WHERE id = 1`
)
