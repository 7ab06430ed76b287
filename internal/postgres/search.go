package postgres

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Search on search_docs (migration 00015, indexer.go).
//
// The statement (SearchFrom) reads, in one snapshot, the tail (the
// messages named by the events above each shard's search cursor, which
// search_docs may not hold yet or may hold with a text since edited) and
// search_docs for the rest:
//
//   - indexed: search_docs rows of the user's conversations whose words
//     match, the tail's messages left out, newest first, one page;
//   - tail: the tail's messages of the user's conversations, not deleted
//     (at most about searchTail of them, indexer.catchUp), whose text
//     holds the ASCII terms (searchTailText): only Go splits words
//     (parley.SearchIndexText), so this keeps every match and some
//     others, and sqlstore.Search checks each row's text as it reads them
//     (SearchRecheck), newest first, and stops at a page of matches;
//
// newest first, with no LIMIT: the indexed part is a page at most per
// branch, the tail is bounded by searchTail. The statement is planned with its
// arguments each time (SearchOptions), so the planner sees the words and
// the conversations and picks by the words' frequency (ANALYZE keeps the
// most common words of search_docs.words): a rare word walks its GIN
// matches (search_docs_words) and sorts the few of the user's; a common
// one walks search_docs newest first (search_docs_key, or
// search_docs_conversation within one conversation) and stops at the
// page. Each of the three forms of the conversations (one, a list, every
// conversation of the user) has its own branch, gated on $2 alone, so a
// plan has only the branch it needs.

// searchWords is the tsquery of SearchMatch's first part, read as it is
// (a cast, not to_tsquery: no parser splits or folds the terms again).
const searchWords = `split_part($2, '|', 1)::tsquery`

// searchIDs is SearchMatch's second part: the conversation ids, or "*".
const searchIDs = `split_part($2, '|', 2)`

// searchTailText is what a tail message's text must hold: every ASCII
// term of SearchMatch's third part (comma separated, maybe none) as a
// substring of the text with ASCII letters lower-cased, and the two
// other characters whose key is ASCII, U+212A (Kelvin) and U+0130 (İ),
// made k and i. A word whose key is ASCII is made of characters that
// map one to one onto its key so (parley.SearchIndexText: per-rune lower
// case, then NFC, which composes only into non-ASCII), so every text
// that matches passes: the tail is narrowed in SQL, with translate, which
// no locale changes, and checked exactly in Go (SearchRecheck).
const searchTailText = `NOT EXISTS (SELECT 1 FROM unnest(string_to_array(NULLIF(split_part($2, '|', 3), ''), ',')) t
						WHERE strpos(translate(m.text, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ` + "\u212a\u0130" + `', 'abcdefghijklmnopqrstuvwxyzki'), t) = 0)`

// searchIndexed is one branch of the indexed part: cond picks the
// conversations of d.
func searchIndexed(cond string) string {
	return `(SELECT d.message_id AS id, d.search_key AS key FROM search_docs d
			WHERE ` + cond + ` AND d.words @@ ` + searchWords + ` AND d.search_key < $3
				AND d.message_id NOT IN (SELECT id FROM tail)
			ORDER BY d.search_key DESC LIMIT $4)`
}

// searchMember: the conversations the user ($1) is in now.
const searchMember = `(SELECT conversation_id FROM members WHERE user_id = $1 AND left_pos IS NULL)`

// SearchFrom implements sqlstore.Dialect (see above).
func (dialect) SearchFrom() (from, match string) {
	// The tail is read per cursor (LATERAL, kept a subquery by OFFSET 0),
	// so each shard's events are a range of the events' primary key
	// whatever the planner thinks of the tables' sizes (every shard has
	// a cursor: setupSearchCursors).
	return `(WITH tail AS MATERIALIZED (
			SELECT DISTINCT e.message_id AS id FROM search_cursor c
			CROSS JOIN LATERAL (SELECT e.message_id FROM events e
				WHERE e.shard = c.shard AND e.pos > c.pos AND e.message_id IS NOT NULL
					AND e.type IN ('newMessage', 'messageEdited', 'messageDeleted') OFFSET 0) e)
		SELECT m.* FROM (
			SELECT u.id FROM (
				SELECT * FROM ` + searchIndexed(searchIDs+` != '*' AND strpos(`+searchIDs+`, ',') = 0 AND d.conversation_id = `+searchIDs) + ` in_one
				UNION ALL
				SELECT * FROM ` + searchIndexed(`strpos(`+searchIDs+`, ',') > 0 AND d.conversation_id = ANY (string_to_array(`+searchIDs+`, ','))`) + ` in_list
				UNION ALL
				SELECT * FROM ` + searchIndexed(searchIDs+` = '*' AND d.conversation_id IN `+searchMember) + ` in_all
				UNION ALL
				SELECT m.id, m.search_key FROM tail JOIN messages m ON m.id = tail.id
				WHERE m.deleted_at IS NULL AND m.search_key < $3
					AND (m.conversation_id = ANY (string_to_array(` + searchIDs + `, ','))
						OR (` + searchIDs + ` = '*' AND m.conversation_id IN ` + searchMember + `))
					AND ` + searchTailText + `

			) u ORDER BY u.key DESC
		) top JOIN messages m ON m.id = top.id) m`, `TRUE`
}

// SearchRecheck implements sqlstore.SearchRechecker: the tail's
// messages come whatever their text.
func (dialect) SearchRecheck() bool { return true }

// SearchKey: an identity column, growing with each message inserted.
func (dialect) SearchKey() string { return `m.search_key` }

// SearchConvs implements sqlstore.SearchConvLimiter: up to this many,
// the user's conversations go to the planner as a list (it estimates how
// many of the rows they hold); beyond, the statement reads them itself.
func (dialect) SearchConvs() int { return 256 }

// SearchOptions implements sqlstore.SearchOptioner: the statement is
// planned with its arguments (pgx's exec mode: an unnamed statement),
// not once for all searches, whose plan could not know the words.
func (dialect) SearchOptions() []any { return []any{pgx.QueryExecModeExec} }

// SyncSearch implements sqlstore.SearchSyncer: when more than
// searchTail events wait for the index, it has them indexed first.
func (e *engine) SyncSearch(ctx context.Context) error { return e.ix.catchUp(ctx) }

// SearchMatch: "tsquery|ids|ascii" (see SearchFrom). The tsquery has each term
// a quoted lexeme (terms hold only letters, digits and marks: no quote,
// backslash or '|'), all of them
// required, the last one a prefix with prefix. ids are convs, comma
// separated (conversation ids are the server's UUIDs), or "*" for none:
// every conversation the user is in. ascii are the terms of ASCII
// letters and digits alone, comma separated (searchTailText).
func (dialect) SearchMatch(terms, convs []string, prefix bool) string {
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" & ")
		}
		b.WriteString("'" + t + "'")
	}
	if prefix {
		b.WriteString(":*")
	}
	b.WriteByte('|')
	if len(convs) == 0 || slices.ContainsFunc(convs, func(c string) bool { return c == "" || c == "*" || strings.ContainsAny(c, ",|") }) {
		// Every conversation (an id that is not the server's cannot be
		// listed so).
		b.WriteByte('*')
	} else {
		b.WriteString(strings.Join(convs, ","))
	}
	b.WriteByte('|')
	n := 0
	for _, t := range terms {
		if isASCIIWord(t) {
			if n > 0 {
				b.WriteByte(',')
			}
			b.WriteString(t)
			n++
		}
	}
	return b.String()
}

// isASCIIWord says t is ASCII lower-case letters and digits alone.
func isASCIIWord(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return t != ""
}
