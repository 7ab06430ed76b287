package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley"
)

// Mentions and search (migration 00008 per engine). Mentions are stored
// with their message (messages.mentions, a JSON array); each engine's
// triggers keep the mentions table, which the reads below use, in step
// with it, so the send paths only write the column. Search reads each
// engine's full-text index (Dialect.SearchFrom).

// MentionRule resolves the @names of a text (parley.ParseMentions) to the
// ids of the conversation's current members, the sender left out, in the
// order the names come in the text. A member is named by any form of
// their name with the same parley.NameKey (users.name_key). A text with
// no '@' costs no query. q is the write's transaction (a send or edit).
func MentionRule(d Dialect, q Querier, conversationID, senderID, text string) ([]string, error) {
	names := parley.ParseMentions(text)
	if len(names) == 0 {
		return nil, nil
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = parley.NameKey(n)
	}
	arg, err := d.IDs(keys)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(bg, `SELECT u.id, u.name_key FROM members mb JOIN users u ON u.id = mb.user_id
		WHERE mb.conversation_id = $1 AND mb.left_pos IS NULL AND `+d.InList("u.name_key", "$2"), conversationID, arg)
	byKey, err := scanAll(query(rows, err), func(r Row) ([2]string, error) {
		var p [2]string
		err := r.Scan(&p[0], &p[1])
		return p, err
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, k := range keys {
		for _, p := range byKey {
			if p[1] == k && p[0] != senderID {
				ids = append(ids, p[0])
			}
		}
	}
	return ids, nil
}

// MentionsArg is a message's mentions argument: NULL for none.
func MentionsArg(m *parley.Message) *string { return mentionsArg(m.Mentions) }

func mentionsArg(ids []string) *string {
	if len(ids) == 0 {
		return nil
	}
	b, _ := json.Marshal(ids) // strings always encode
	s := string(b)
	return &s
}

// searchConvs is how many conversations a user may be in for a search
// to name them to the index (Dialect.SearchMatch; a dialect may say
// otherwise: SearchConvLimiter); a user in more has the index walk every
// match, of which they may see enough to fill a page soon.
const searchConvs = 64

// qSearchConvs: the conversations a user is in now (args: user, limit).
const qSearchConvs = `SELECT conversation_id FROM members WHERE user_id = $1 AND left_pos IS NULL LIMIT $2 + 0`

// searchLimit clamps a page limit of Search and Mentions.
func searchLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, invalidf("limit must not be negative")
	case limit == 0:
		return parley.DefaultSearchLimit, nil
	}
	return min(limit, parley.MaxSearchLimit), nil
}

// Cursors are opaque to clients: base64url of "s<key>" for a search (the
// last result's SearchKey) or "m<micros>:<message id>" for mentions (the
// last result's time and id).
func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeCursor(c string, kind byte) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != kind {
		return "", invalidf("cursor is not one this server gave")
	}
	return string(b[1:]), nil
}

// Search implements parley.Searcher.
func (s *Store) Search(ctx context.Context, userID string, sq parley.SearchQuery) (parley.SearchPage, error) {
	limit, err := searchLimit(sq.Limit)
	if err != nil {
		return parley.SearchPage{}, err
	}
	if len(sq.Terms) == 0 || len(sq.Terms) > parley.MaxSearchTerms {
		return parley.SearchPage{}, invalidf("a search needs 1 to %d terms", parley.MaxSearchTerms)
	}
	for _, t := range sq.Terms {
		// Terms come from parley.SearchTerms; a caller that made its own
		// gets nothing into the query language either.
		for _, r := range t {
			if !parley.IsSearchWordRune(r) {
				return parley.SearchPage{}, invalidf("a search term holds only letters, digits and marks")
			}
		}
		if t == "" || len(t) > parley.MaxSearchTermBytes {
			return parley.SearchPage{}, invalidf("a search term holds 1 to %d bytes", parley.MaxSearchTermBytes)
		}
	}
	after := int64(math.MaxInt64)
	if sq.Cursor != "" {
		v, err := decodeCursor(sq.Cursor, 's')
		if err != nil {
			return parley.SearchPage{}, err
		}
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return parley.SearchPage{}, invalidf("cursor is not one this server gave")
		}
	}
	from, match := s.d.SearchFrom()
	key := s.d.SearchKey()
	conv := ""
	if sq.ConversationID != "" {
		conv = ` AND m.conversation_id = $5`
	}
	// A dialect whose statement may return messages that do not match
	// (SearchRechecker) gets no LIMIT: the rows are read, newest first,
	// until a page of them matches.
	limitSQL := ` LIMIT $4 + 0`
	if r, ok := s.d.(SearchRechecker); ok && r.SearchRecheck() {
		limitSQL = ""
	}
	sqlText := func(hidden string) string {
		return `SELECT ` + messageCols + `, ` + key + ` FROM ` + from + ` ` + messageJoinsFor + `$1
		JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = $1 AND mb.left_pos IS NULL
		WHERE ` + match + ` AND m.deleted_at IS NULL AND ` + key + ` < $3` + conv + hidden + `
		ORDER BY ` + key + ` DESC` + limitSQL
	}
	if err := s.syncSearch(ctx); err != nil {
		return parley.SearchPage{}, err
	}
	var page parley.SearchPage
	err = s.e.Read(ctx, func(q Querier) error {
		var convs []string
		if sq.ConversationID != "" {
			// A non-member (or no such conversation) is ENOTFOUND, as
			// for every operation on a conversation.
			if _, err := s.readSeq(ctx, q, sq.ConversationID, userID); err != nil {
				return err
			}
			convs = []string{sq.ConversationID}
		} else {
			// A user in few conversations has the index match only
			// theirs: walking every match of a common word to find the
			// few they may see would cost the whole index.
			most := s.searchConvLimit()
			rows, err := q.Query(ctx, qSearchConvs, userID, most+1)
			if convs, err = scanAll(query(rows, err), scanString); err != nil {
				return err
			}
			if len(convs) > most {
				convs = nil
			}
		}
		args := s.searchArgs(userID, s.d.SearchMatch(sq.Terms, convs, sq.Prefix), after, limit+1)
		if sq.ConversationID != "" {
			args = append(args, sq.ConversationID)
		}
		hidden, err := s.hiddenSenders(ctx, q, userID)
		if err != nil {
			return err
		}
		rows, err := q.Query(ctx, sqlText(hidden), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		page.Results = []parley.SearchResult{}
		for len(page.Results) <= limit && rows.Next() {
			var (
				m   msgRow
				k   int64
				buf [msgCols + 1]any
			)
			if err := rows.Scan(append(m.appendDest(s.d, buf[:0]), &k)...); err != nil {
				return err
			}
			msg := m.message()
			// The index and this check split words by one rule
			// (parley.SearchIndexText): a row the index matched always
			// passes; a SearchRechecker's others are left out here.
			parts, ok := parley.SearchMatch(msg.Text, sq.Terms, sq.Prefix)
			if !ok {
				continue
			}
			page.Results = append(page.Results, parley.SearchResult{Message: *msg, Highlight: parts,
				Cursor: encodeCursor("s" + strconv.FormatInt(k, 10))})
		}
		return rows.Err()
	})
	if err != nil {
		return parley.SearchPage{}, s.wrapInternal(err)
	}
	return finishPage(page, limit), nil
}

// hiddenSenders is the condition that leaves out the messages (m) of the
// users the viewer ($1) blocked, for search and mentions: empty when they
// blocked nobody, so most searches probe no blocks for each match.
func (s *Store) hiddenSenders(ctx context.Context, q Querier, userID string) (string, error) {
	var n int64
	if err := q.QueryRow(ctx, qBlockCount, userID).Scan(&n); err != nil || n == 0 {
		return "", err
	}
	return ` AND NOT ` + blockedSenderOf, nil
}

// finishPage cuts a page fetched with one result more than limit and
// sets HasMore and Next.
func finishPage(page parley.SearchPage, limit int) parley.SearchPage {
	if len(page.Results) > limit {
		page.Results, page.HasMore = page.Results[:limit], true
	}
	if page.HasMore {
		page.Next = page.Results[len(page.Results)-1].Cursor
	}
	return page
}

// Mentions implements parley.Searcher: newest first by the message's
// time, then id.
func (s *Store) Mentions(ctx context.Context, userID string, mq parley.MentionQuery) (parley.SearchPage, error) {
	limit, err := searchLimit(mq.Limit)
	if err != nil {
		return parley.SearchPage{}, err
	}
	at, id := time.UnixMicro(math.MaxInt64/2).UTC(), ""
	if mq.Cursor != "" {
		v, err := decodeCursor(mq.Cursor, 'm')
		if err != nil {
			return parley.SearchPage{}, err
		}
		micros, rest, ok := strings.Cut(v, ":")
		n, perr := strconv.ParseInt(micros, 10, 64)
		if !ok || perr != nil || rest == "" {
			return parley.SearchPage{}, invalidf("cursor is not one this server gave")
		}
		at, id = time.UnixMicro(n).UTC(), rest
	}
	var page parley.SearchPage
	err = s.e.Read(ctx, func(q Querier) error {
		hidden, err := s.hiddenSenders(ctx, q, userID)
		if err != nil {
			return err
		}
		rows, err := q.Query(ctx, `SELECT `+messageCols+` FROM mentions x
			JOIN messages m ON m.id = x.message_id `+messageJoinsFor+`$1
			JOIN members mb ON mb.conversation_id = x.conversation_id AND mb.user_id = x.user_id AND mb.left_pos IS NULL
			WHERE x.user_id = $1 AND (x.created_at < $2 OR (x.created_at = $2 AND x.message_id < $3))`+hidden+`
			ORDER BY x.created_at DESC, x.message_id DESC LIMIT $4 + 0`, userID, s.d.Time(at), id, limit+1)
		page.Results, err = scanAll(query(rows, err), func(r Row) (parley.SearchResult, error) {
			m, err := ScanMessage(s.d, r)
			return parley.SearchResult{Message: m,
				Cursor: encodeCursor("m" + strconv.FormatInt(m.CreatedAt.UnixMicro(), 10) + ":" + m.ID)}, err
		})
		return err
	})
	if err != nil {
		return parley.SearchPage{}, s.wrapInternal(err)
	}
	return finishPage(page, limit), nil
}
