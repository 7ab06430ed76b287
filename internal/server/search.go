package server

import (
	"context"
	"net/http"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Search and mentions (issue 14): the search and mentions ops and their
// routes, GET /v1/search and GET /v1/mentions, through one service.

// searcher is the store's parley.Searcher; both stores implement it
// (sqlstore.Complete), so a store without it is a build of the server
// with a store from elsewhere: the ops answer unsupported.
func (s *service) searcher() (parley.Searcher, error) {
	if se, ok := s.store.(parley.Searcher); ok {
		return se, nil
	}
	return nil, parley.Errorf(parley.EUNSUPPORTED, "this server's store cannot search")
}

// pageSearcher checks a page's limit and cursor (before any rate limit
// is taken) and returns the store's searcher.
func (s *service) pageSearcher(limit int, cursor string) (parley.Searcher, error) {
	if limit < 0 || limit > parley.MaxSearchLimit {
		return nil, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", parley.MaxSearchLimit)
	}
	if len(cursor) > maxCursorBytes {
		return nil, parley.Errorf(parley.EINVALID, "cursor is not one this server gave")
	}
	return s.searcher()
}

// search answers a full-text search: the query is sanitised into words
// (parley.SearchTerms) before the rate limit is taken, so a refused
// query costs no token. The page is cut to maxBytes of JSON, keeping its
// newest results, with has_more and the next cursor of the last one kept.
func (s *service) search(ctx context.Context, u parley.User, d protocol.Search, maxBytes int) (parley.SearchPage, error) {
	terms, err := parley.SearchTerms(d.Query)
	if err != nil {
		return parley.SearchPage{}, err
	}
	se, err := s.pageSearcher(d.Limit, d.Cursor)
	if err != nil {
		return parley.SearchPage{}, err
	}
	if err := s.limits.searches.check(u.ID); err != nil {
		return parley.SearchPage{}, err
	}
	p, err := se.Search(ctx, u.ID, parley.SearchQuery{Terms: terms, Prefix: parley.SearchPrefix(d.Query), ConversationID: d.ConversationID, Cursor: d.Cursor, Limit: d.Limit})
	if err != nil {
		return parley.SearchPage{}, err
	}
	return cutResults(p, maxBytes), nil
}

// mentions lists u's mentions, newest first; a read like history.
func (s *service) mentions(ctx context.Context, u parley.User, d protocol.Mentions, maxBytes int) (parley.SearchPage, error) {
	se, err := s.pageSearcher(d.Limit, d.Cursor)
	if err != nil {
		return parley.SearchPage{}, err
	}
	if err := s.limits.reads.check(u.ID); err != nil {
		return parley.SearchPage{}, err
	}
	p, err := se.Mentions(ctx, u.ID, parley.MentionQuery{Cursor: d.Cursor, Limit: d.Limit})
	if err != nil {
		return parley.SearchPage{}, err
	}
	return cutResults(p, maxBytes), nil
}

// maxCursorBytes bounds a cursor before a store decodes it (the stores'
// are under 100 bytes).
const maxCursorBytes = 256

// cutResults fills attachment URLs and cuts p to maxBytes of results.
func cutResults(p parley.SearchPage, maxBytes int) parley.SearchPage {
	if p.Results == nil {
		p.Results = []parley.SearchResult{}
	}
	for i := range p.Results {
		p.Results[i].Message = *messageURLs(&p.Results[i].Message)
	}
	if n := fitting(p.Results, maxBytes, false); n < len(p.Results) {
		p.Results, p.HasMore = p.Results[:n], true
		p.Next = p.Results[n-1].Cursor
	}
	return p
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveQuery(s, w, r, u, func(q *query) protocol.Search {
		return protocol.Search{Query: q.str("q"), ConversationID: q.str("conversation_id"), Cursor: q.str("cursor"), Limit: q.limit(parley.MaxSearchLimit)}
	}, s.svc.search)
}

func (s *Server) handleMentions(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveQuery(s, w, r, u, func(q *query) protocol.Mentions {
		return protocol.Mentions{Cursor: q.str("cursor"), Limit: q.limit(parley.MaxSearchLimit)}
	}, s.svc.mentions)
}
