package client

import (
	"context"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// SearchOptions narrow a search: one conversation only, the page after
// Cursor (a SearchPage's Next), at most Limit results (1 to
// parley.MaxSearchLimit; 0 is the server's default, 20).
type SearchOptions struct {
	ConversationID string
	Cursor         string
	Limit          int
}

// Search finds messages by words in the conversations this user is a
// member of, newest first: every word of query must be in a message,
// without regard to case; a query ending in '*' right after its last word
// matches that word as the start of a word ("quok*"). Other punctuation
// only separates words. Each result's Highlight cuts the
// text into parts and marks the words that matched; render the parts as
// text (never as markup). Follow page.Next while page.HasMore for more.
//
// It fails with EINVALID for a query with no word or over
// parley.MaxSearchQueryBytes (checked here first), ENOTFOUND for a
// conversation this user is not in, and ERATELIMITED past the server's
// search limit (1/s, burst 10 by default). A search is a read: retried
// across a dropped link.
func (c *Client) Search(ctx context.Context, query string, o SearchOptions) (parley.SearchPage, error) {
	if _, err := parley.SearchTerms(query); err != nil {
		return parley.SearchPage{}, err
	}
	var page parley.SearchPage
	err := c.call(ctx, protocol.OpSearch, protocol.Search{Query: query, ConversationID: o.ConversationID,
		Cursor: o.Cursor, Limit: o.Limit}, &page, true)
	return page, err
}

// Mentions lists the messages that mention this user (an @name in their
// text, as last sent or edited) in the conversations they are in, newest
// first, from the page after cursor ("" for the newest), at most limit
// (0: 20). A conversation's unread mentions are in its UnreadMentions.
func (c *Client) Mentions(ctx context.Context, cursor string, limit int) (parley.SearchPage, error) {
	var page parley.SearchPage
	err := c.call(ctx, protocol.OpMentions, protocol.Mentions{Cursor: cursor, Limit: limit}, &page, true)
	return page, err
}
