package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/parleychat/parley"
)

// The integrations' operations (parley.WebhookQueue, parley.APIKeyStore):
// small writes through the batcher and one-statement reads. Times are
// stored as Unix milliseconds.

func ms(t time.Time) int64                          { return t.UnixMilli() }
func fromMS(v int64) time.Time                      { return time.UnixMilli(v).UTC() }
func (s *Store) conflictf(f string, a ...any) error { return parley.Errorf(parley.ECONFLICT, f, a...) }

// WebhookCursor implements parley.WebhookQueue.
func (s *Store) WebhookCursor(ctx context.Context, shard int) (int64, error) {
	if err := parley.ValidateShard(shard, s.shards); err != nil {
		return 0, err
	}
	var pos int64
	if err := s.e.QueryRow(ctx, qWebhookCursor, shard).Scan(&pos); err != nil {
		if s.d.IsNoRows(err) {
			return -1, nil
		}
		return 0, s.wrapInternal(err)
	}
	return pos, nil
}

// EnqueueWebhooks implements parley.WebhookQueue. A delivery already
// stored (same endpoint, shard and position) is kept as it is; every one
// of ds must be of shard.
func (s *Store) EnqueueWebhooks(ctx context.Context, shard int, from, to int64, ds []parley.WebhookDelivery) error {
	if err := parley.ValidateShard(shard, s.shards); err != nil {
		return err
	}
	if to < from {
		return invalidf("webhook cursor cannot move back from %d to %d", from, to)
	}
	for _, d := range ds {
		if d.Shard != shard {
			return invalidf("a delivery of shard %d enqueued with shard %d's cursor", d.Shard, shard)
		}
	}
	now := ms(parley.Now())
	return s.e.Write(ctx, func(w Tx) error {
		// A shard never enqueued has no row (-1): the first move
		// inserts it, and of two nodes racing to, one inserts nothing.
		q, args := qMoveWebhookCursor, []any{to, shard, from}
		if from < 0 {
			q, args = qStartWebhookCursor, []any{shard, to}
		}
		n, err := w.Exec(bg, q, args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return s.conflictf("webhook cursor of shard %d is not at %d", shard, from)
		}
		for _, d := range ds {
			next := now
			if !d.NextAt.IsZero() {
				next = ms(d.NextAt)
			}
			if _, err := w.Exec(bg, qInsertWebhook, d.Endpoint, d.Shard, d.Pos, d.ConversationID, d.Payload, next, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClaimWebhooks implements parley.WebhookQueue: the read and the lease are
// one write, so two nodes never claim the same delivery at once.
func (s *Store) ClaimWebhooks(ctx context.Context, endpoint string, now, leaseUntil time.Time, limit int) ([]parley.WebhookDelivery, error) {
	if limit <= 0 {
		return nil, invalidf("limit must be positive")
	}
	var ds []parley.WebhookDelivery
	err := s.e.Write(ctx, func(w Tx) error {
		ds = ds[:0]
		rows, err := w.Query(bg, qDueWebhooks, endpoint, ms(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				d             parley.WebhookDelivery
				next, created int64
			)
			if err := rows.Scan(&d.Endpoint, &d.Shard, &d.Pos, &d.ConversationID, &d.Payload, &d.Attempts, &next, &created); err != nil {
				rows.Close()
				return err
			}
			d.NextAt, d.CreatedAt = fromMS(ms(leaseUntil)), fromMS(created)
			d.Attempts++
			ds = append(ds, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range ds {
			if _, err := w.Exec(bg, qLeaseWebhook, ms(leaseUntil), d.Endpoint, d.Shard, d.Pos); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// FinishWebhook implements parley.WebhookQueue.
func (s *Store) FinishWebhook(ctx context.Context, endpoint string, shard int, pos int64) error {
	return s.e.Write(ctx, func(w Tx) error {
		_, err := w.Exec(bg, qFinishWebhook, endpoint, shard, pos)
		return err
	})
}

// RetryWebhook implements parley.WebhookQueue.
func (s *Store) RetryWebhook(ctx context.Context, endpoint string, shard int, pos int64, nextAt time.Time) error {
	return s.e.Write(ctx, func(w Tx) error {
		_, err := w.Exec(bg, qRetryWebhook, ms(nextAt), endpoint, shard, pos)
		return err
	})
}

// WebhookBacklog implements parley.WebhookQueue.
func (s *Store) WebhookBacklog(ctx context.Context) (map[string]int, error) {
	rows, err := s.e.Query(ctx, qWebhookBacklog)
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var (
			ep string
			n  int64
		)
		if err := rows.Scan(&ep, &n); err != nil {
			return nil, s.wrapInternal(err)
		}
		out[ep] = int(n)
	}
	return out, s.wrapInternal(rows.Err())
}

// CreateAPIKey implements parley.APIKeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k parley.APIKey, hash []byte) error {
	if err := parley.ValidateID("api key id", k.ID); err != nil {
		return err
	}
	if len(hash) == 0 || len(k.Scopes) == 0 {
		return invalidf("an api key needs a hash and at least one scope")
	}
	return s.e.Write(ctx, func(w Tx) error {
		_, err := w.Exec(bg, qInsertAPIKey, k.ID, k.Name, hash, strings.Join(k.Scopes, ","), ms(k.CreatedAt))
		return err
	})
}

func (s *Store) scanAPIKey(r Row) (parley.APIKey, error) {
	var (
		k       parley.APIKey
		scopes  string
		created int64
		revoked NullInt64
	)
	if err := r.Scan(&k.ID, &k.Name, &scopes, &created, s.d.IntDest(&revoked)); err != nil {
		return k, err
	}
	k.Scopes = strings.Split(scopes, ",")
	k.CreatedAt = fromMS(created)
	if revoked.Valid {
		t := fromMS(revoked.Int64)
		k.RevokedAt = &t
	}
	return k, nil
}

// APIKeyByHash implements parley.APIKeyStore.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (parley.APIKey, error) {
	k, err := s.scanAPIKey(s.e.QueryRow(ctx, qAPIKeyByHash, hash))
	return k, s.notFound(err, parley.ErrNotFound)
}

// APIKeys implements parley.APIKeyStore.
func (s *Store) APIKeys(ctx context.Context) ([]parley.APIKey, error) {
	rows, err := s.e.Query(ctx, qAPIKeys)
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	defer rows.Close()
	var ks []parley.APIKey
	for rows.Next() {
		k, err := s.scanAPIKey(rows)
		if err != nil {
			return nil, s.wrapInternal(err)
		}
		ks = append(ks, k)
	}
	return ks, s.wrapInternal(rows.Err())
}

// RevokeAPIKey implements parley.APIKeyStore.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	return s.e.Write(ctx, func(w Tx) error {
		n, err := w.Exec(bg, qRevokeAPIKey, ms(parley.Now()), id)
		if err == nil && n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "no api key %q", id)
		}
		return err
	})
}

// BanUser implements parley.APIKeyStore.
func (s *Store) BanUser(ctx context.Context, userID string) error {
	if err := parley.ValidateID("user id", userID); err != nil {
		return err
	}
	return s.e.Write(ctx, func(w Tx) error {
		if err := usersExist(w, userID); err != nil {
			return err
		}
		n, err := w.Exec(bg, qBanUser, userID, ms(parley.Now()))
		if err != nil || n == 0 { // banned already: logged then
			return err
		}
		return userChanged(w, userID)
	})
}

// userChanged gives userID the next number of the log of changed users
// (parley.UserChangeLog), in w: the write that changed them commits it
// or rolls it back with its change. The counter row stays locked until
// w commits, so a write that takes the next number waits for this one's
// commit, and numbers become visible in order (a sequence would not
// wait: a reader could see a higher number before a lower one commits,
// go on after it and miss the lower one for ever). In PostgreSQL such
// writes run in batches that hold every shard's positions lock already
// (Engine.Write), so the row adds no wait; in SQLite there is one writer.
func userChanged(w Tx, userID string) error {
	var seq int64
	if err := w.QueryRow(bg, qNextUserChange).Scan(&seq); err != nil {
		return err
	}
	_, err := w.Exec(bg, qSetUserChange, seq, userID)
	return err
}

// UserChangeMark implements parley.UserChangeLog.
func (s *Store) UserChangeMark(ctx context.Context) (int64, error) {
	var seq int64
	err := s.e.QueryRow(ctx, qUserChangeMark).Scan(&seq)
	return seq, s.wrapInternal(err)
}

// UserChangesAfter implements parley.UserChangeLog: one range read of
// the users_change_seq index.
func (s *Store) UserChangesAfter(ctx context.Context, after int64, limit int) ([]parley.LoggedUserChange, error) {
	if limit < 1 || limit > parley.MaxUserChangesPage {
		return nil, invalidf("limit must be between 1 and %d", parley.MaxUserChangesPage)
	}
	rows, err := s.e.Query(ctx, qUserChangesAfter, after, limit)
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	defer rows.Close()
	var cs []parley.LoggedUserChange
	for rows.Next() {
		var c parley.LoggedUserChange
		if err := rows.Scan(&c.ID, &c.Seq, &c.Banned); err != nil {
			return nil, s.wrapInternal(err)
		}
		cs = append(cs, c)
	}
	return cs, s.wrapInternal(rows.Err())
}

// BannedUsers implements parley.APIKeyStore.
func (s *Store) BannedUsers(ctx context.Context) ([]string, error) {
	rows, err := s.e.Query(ctx, qBannedUsers)
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrapInternal(err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrapInternal(rows.Err())
}

var (
	_ parley.WebhookQueue  = (*Store)(nil)
	_ parley.APIKeyStore   = (*Store)(nil)
	_ parley.UserChangeLog = (*Store)(nil)
)

// MessagesBySender implements parley.APIKeyStore.
func (s *Store) MessagesBySender(ctx context.Context, userID, afterClientID string, limit int) ([]parley.Message, error) {
	if limit <= 0 || limit > parley.MaxPageLimit*10 {
		return nil, invalidf("limit must be between 1 and %d", parley.MaxPageLimit*10)
	}
	rows, err := s.e.Query(ctx, qMessagesBySender, userID, afterClientID, limit)
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	defer rows.Close()
	var ms []parley.Message
	for rows.Next() {
		m, err := ScanMessage(s.d, rows)
		if err != nil {
			return nil, s.wrapInternal(err)
		}
		ms = append(ms, m)
	}
	return ms, s.wrapInternal(rows.Err())
}

// EraseProgress implements parley.APIKeyStore.
func (s *Store) EraseProgress(ctx context.Context, userID string) (after, conversations string, err error) {
	err = s.e.QueryRow(ctx, qEraseProgress, userID).Scan(&after, &conversations)
	if err != nil && s.d.IsNoRows(err) {
		return "", "", nil
	}
	return after, conversations, s.wrapInternal(err)
}

// SetEraseProgress implements parley.APIKeyStore.
func (s *Store) SetEraseProgress(ctx context.Context, userID, afterClientID, conversations string) error {
	return s.e.Write(ctx, func(w Tx) error {
		_, err := w.Exec(bg, qSetEraseProgress, userID, afterClientID, conversations)
		return err
	})
}
