package postgres

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3"

	"github.com/parleychat/parley"
)

// Migration 00026, in Go: search_docs.words are the words Go splits
// (parley.SearchIndexText), each a lexeme as it is, no longer
// to_tsvector('simple', text), whose parser found words inside e-mail
// addresses and URLs and kept combining marks that the query's words
// (parley.SearchTerms) split at (docs/protocol.md, "search"). The indexer
// writes them so from now on (indexer.go, qIndex); this re-indexes the
// rows already there, searchDocsChunk at a time in key order, in the
// migration's transaction (goose's session lock keeps other nodes'
// migrations waiting; a node of the previous release still indexing
// meanwhile writes rows with the old rule, which its own events' tail
// would show: upgrade every node). Down restores to_tsvector's words.

// migrationExec leads the migration's arguments (pgx's stdlib passes it
// to pgx): its statements are planned for their arguments and not kept
// prepared on the pool's connection, whose later users (an index step)
// would find them planned for the tables as they were.
const migrationExec = pgx.QueryExecModeExec

// searchDocsChunk bounds the rows one statement of the migration reads
// and rewrites: their texts are in memory at once, at most 4 MiB
// (parley.MaxTextRunes runes of up to 4 bytes each).
const searchDocsChunk = 256

// searchWordsMigration is migration 00026 (migrate adds it to the SQL
// files).
func searchWordsMigration() *goose.Migration {
	return goose.NewGoMigration(26, &goose.GoFunc{RunTx: reindexSearchDocs},
		&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE search_docs d SET words = to_tsvector('simple', m.text)
				FROM messages m WHERE m.search_key = d.search_key`, migrationExec)
			return err
		}})
}

// reindexSearchDocs rewrites every search_docs row's words from its
// message's text as it is now (a row of a message edited or deleted
// since, in the tail, the indexer writes again or deletes).
func reindexSearchDocs(ctx context.Context, tx *sql.Tx) error {
	after := int64(-1 << 63)
	for {
		rows, err := tx.QueryContext(ctx, `SELECT d.search_key, m.text FROM search_docs d JOIN messages m ON m.search_key = d.search_key
			WHERE d.search_key > $1 ORDER BY d.search_key LIMIT $2`, migrationExec, after, searchDocsChunk)
		if err != nil {
			return err
		}
		var (
			keys  []int64
			words []string
		)
		for rows.Next() {
			var (
				k    int64
				text string
			)
			if err := rows.Scan(&k, &text); err != nil {
				rows.Close()
				return err
			}
			keys, words = append(keys, k), append(words, parley.SearchIndexText(text))
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(keys) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE search_docs d SET words = `+searchDocWords+`
			FROM unnest($1::bigint[], $2::text[]) AS u (k, w) WHERE d.search_key = u.k`, migrationExec, keys, words); err != nil {
			return err
		}
		after = keys[len(keys)-1]
	}
}
