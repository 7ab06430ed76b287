package servertest

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// dbFile is the SQLite file of the store in a server's data directory.
const dbFile = "parley.db"

// StoredAttachments counts the attachment rows in dir's SQLite file (the
// one Start opens, and the SDK's tests too), read-only with a connection
// of its own: "nothing is stored" must hold in the database itself, not
// only in what the API shows.
func StoredAttachments(t testing.TB, dir string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, dbFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM attachments").Scan(&n); err != nil {
		t.Fatalf("servertest: counting the attachments in %s: %v", dir, err)
	}
	return n
}
