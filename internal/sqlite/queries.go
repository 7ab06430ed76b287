package sqlite

// The SQL, in one place. Table aliases: c conversations, mb members,
// m messages, su the sender, a attachments, e events, eu the actor.

const (
	qHead = `SELECT COALESCE(MAX(pos), 0) FROM events`

	// Users.
	qUserByID = `SELECT id, name, created_at FROM users WHERE id = ?`
	// A name is looked up by its key (parley.NameKey), or by the name
	// itself for the users whose look-alike name predates name_key and
	// who hold no key (see migration 00003); the exact name wins.
	// Args: name, key.
	qUserByName = `SELECT id, name, created_at FROM users
		WHERE name_key = ?2 OR name = ?1 ORDER BY name = ?1 DESC LIMIT 1`
	qCredentials = `SELECT id, name, created_at, password_hash FROM users
		WHERE (name_key = ?2 OR name = ?1) AND password_hash IS NOT NULL ORDER BY name = ?1 DESC LIMIT 1`
	qInsertUser = `INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`
	qRenameUser = `UPDATE users SET name = ?, name_key = ? WHERE id = ?`
	// qUserNameTaken: the name of another user (not ?3) who holds this
	// name or its key (args: name, key, id).
	qUserNameTaken = `SELECT name FROM users WHERE (name_key = ?2 OR name = ?1) AND id != ?3 LIMIT 1`
	// qUsersWithoutKey and qSetNameKey fill name_key at open (db.go).
	qUsersWithoutKey = `SELECT id, name FROM users WHERE name_key IS NULL ORDER BY created_at, id`
	qSetNameKey      = `UPDATE users SET name_key = ?1 WHERE id = ?2 AND name_key IS NULL
		AND NOT EXISTS (SELECT 1 FROM users WHERE name_key = ?1)`
	qUserExists = `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`

	// Conversations.
	qDirectByPair       = `SELECT id FROM conversations WHERE kind = 'direct' AND direct_a = ? AND direct_b = ?`
	qInsertConversation = `INSERT INTO conversations
		(id, kind, title, created_by, created_at, last_seq, last_activity_at, direct_a, direct_b)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)`
	qRenameConversation = `UPDATE conversations SET title = ? WHERE id = ?`
	qConversationRow    = `SELECT ` + conversationCols + ` FROM conversations c WHERE c.id = ?`

	// qViews lists conversations as a viewer sees them; qView is one of them.
	// The unread count is derived from positions, never stored.
	qViewsBase = `SELECT ` + conversationCols + `, mb.read_seq,
		(SELECT COUNT(*) FROM messages x
			WHERE x.conversation_id = c.id AND x.seq > mb.read_seq
			AND x.sender_id != mb.user_id AND x.deleted_at IS NULL),
		` + messageCols + `
		FROM members mb
		JOIN conversations c ON c.id = mb.conversation_id
		LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq
		LEFT JOIN users su ON su.id = m.sender_id
		LEFT JOIN attachments a ON a.id = m.attachment_id
		WHERE mb.user_id = ? AND mb.left_pos IS NULL`
	qViews = qViewsBase + ` ORDER BY c.last_activity_at DESC, c.id DESC`
	qView  = qViewsBase + ` AND c.id = ?`

	// Members.
	qMembership = `SELECT read_seq FROM members
		WHERE conversation_id = ? AND user_id = ? AND left_pos IS NULL`
	qMembers = `SELECT mb.user_id, u.name, mb.read_seq FROM members mb
		JOIN users u ON u.id = mb.user_id
		WHERE mb.conversation_id = ? AND mb.left_pos IS NULL
		ORDER BY mb.joined_pos, mb.user_id`
	// qMembersOfViewer: every member of every conversation of the viewer.
	qMembersOfViewer = `SELECT mb.conversation_id, mb.user_id, u.name, mb.read_seq
		FROM members mine
		JOIN members mb ON mb.conversation_id = mine.conversation_id AND mb.left_pos IS NULL
		JOIN users u ON u.id = mb.user_id
		WHERE mine.user_id = ? AND mine.left_pos IS NULL
		ORDER BY mb.conversation_id, mb.joined_pos, mb.user_id`
	qMemberIDs = `SELECT user_id FROM members
		WHERE conversation_id = ? AND left_pos IS NULL ORDER BY joined_pos, user_id`
	// qAudience is qMemberIDs in no particular order (no sort).
	qAudience = `SELECT user_id FROM members WHERE conversation_id = ? AND left_pos IS NULL`
	// A user added again gets a new window; the read position carries over.
	qInsertMember = `INSERT INTO members (conversation_id, user_id, joined_pos, read_seq)
		VALUES (?, ?, ?, COALESCE((SELECT MAX(read_seq) FROM members
			WHERE conversation_id = ?1 AND user_id = ?2), 0))`
	qRemoveMember = `UPDATE members SET left_pos = ?
		WHERE conversation_id = ? AND user_id = ? AND left_pos IS NULL`
	qSetReadSeq = `UPDATE members SET read_seq = ?
		WHERE conversation_id = ? AND user_id = ? AND left_pos IS NULL AND read_seq < ?1`
	// qContacts: the users who see each other's presence. Members of a
	// common group are contacts; the two users of a direct conversation
	// only once both have written in it (members.wrote), so opening one
	// with a stranger reveals nothing.
	qContacts = `SELECT DISTINCT other.user_id FROM members mine
		JOIN members other ON other.conversation_id = mine.conversation_id AND other.left_pos IS NULL
		` + contactsJoin + `
		WHERE mine.user_id = ? AND mine.left_pos IS NULL AND other.user_id != mine.user_id
		AND ` + contactsRule + `
		ORDER BY other.user_id`
	contactsJoin = `JOIN conversations c ON c.id = mine.conversation_id`
	contactsRule = `(c.kind = 'group' OR (mine.wrote = 1 AND other.wrote = 1))`
	// qUsersOf: a set of users (a JSON array of ids).
	qUsersOf = `SELECT id, name, created_at FROM users WHERE id IN (SELECT value FROM json_each(?))`
	// qContactsOf: the contacts of a set of users (a JSON array of ids).
	qContactsOf = `SELECT DISTINCT mine.user_id, other.user_id FROM members mine
		JOIN members other ON other.conversation_id = mine.conversation_id AND other.left_pos IS NULL
		` + contactsJoin + `
		WHERE mine.user_id IN (SELECT value FROM json_each(?)) AND mine.left_pos IS NULL AND other.user_id != mine.user_id
		AND ` + contactsRule + `
		ORDER BY mine.user_id, other.user_id`
	// qWindows: the membership windows of a set of conversations, to
	// compute the audience of replayed events. Filled in with placeholders.
	qWindowsPrefix = `SELECT conversation_id, user_id, joined_pos, left_pos FROM members
		WHERE conversation_id IN (`

	// A LIMIT is written "? + 0", not "?": SQLite reads a bare bound
	// LIMIT while planning and then marks the statement to be prepared
	// again whenever that parameter is bound anew, i.e. on every call,
	// which undoes preparing it once.

	// Messages.
	qMessageByID       = `SELECT ` + messageCols + ` FROM messages m ` + messageJoins + ` WHERE m.id = ? AND m.conversation_id = ?`
	qMessageByClientID = `SELECT ` + messageCols + ` FROM messages m ` + messageJoins + ` WHERE m.sender_id = ? AND m.client_id = ?`
	qLastSeq           = `SELECT last_seq FROM conversations WHERE id = ?`
	qDeleteMessage     = `UPDATE messages SET deleted_at = ?, text = '', attachment_id = NULL WHERE id = ?`
	qPageNewest        = `SELECT ` + messageCols + ` FROM messages m ` + messageJoins + `
		WHERE m.conversation_id = ? ORDER BY m.seq DESC LIMIT ? + 0`
	qPageBefore = `SELECT ` + messageCols + ` FROM messages m ` + messageJoins + `
		WHERE m.conversation_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ? + 0`
	qPageAfter = `SELECT ` + messageCols + ` FROM messages m ` + messageJoins + `
		WHERE m.conversation_id = ? AND m.seq > ? AND m.seq < ? ORDER BY m.seq ASC LIMIT ? + 0`

	// Events.
	qInsertEvent = `INSERT INTO events (pos, conversation_id, type, actor_id, message_id, data, at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	qEvents = `SELECT ` + eventCols + ` FROM events e ` + eventJoins + `
		WHERE e.pos > ? ORDER BY e.pos LIMIT ? + 0`
	// qEventsFor: the events inside one of the user's membership windows
	// (args: user, after, limit). For each window the subquery takes at
	// most limit events from the conversation's index, bounded by the
	// window, so the sort sees at most windows x limit rows, however far
	// behind the user is, and the joins run only for those.
	qEventsFor = `SELECT ` + eventCols + ` FROM members w
		JOIN events e ON e.pos IN (SELECT x.pos FROM events x
			WHERE x.conversation_id = w.conversation_id
			AND x.pos > max(?2, w.joined_pos - 1)
			AND x.pos <= COALESCE(w.left_pos, 9223372036854775807)
			ORDER BY x.pos LIMIT ?3 + 0)
		` + eventJoins + `
		WHERE w.user_id = ?1
		ORDER BY e.pos LIMIT ?3 + 0`

	// Attachments.
	qAttachmentExists = `SELECT EXISTS (SELECT 1 FROM attachments WHERE id = ?)`
	qAttachmentOwned  = `SELECT content_type, size, width, height FROM attachments WHERE id = ? AND owner_id = ?`
	qInsertAttachment = `INSERT INTO attachments
		(id, owner_id, content_type, size, width, height, data, thumb, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// What an owner's attachments take: data and thumbnails.
	qUploadUsage = `SELECT COALESCE(SUM(size + COALESCE(length(thumb), 0)), 0) FROM attachments WHERE owner_id = ?`
	// Attachments older than a time that no message holds (a deleted
	// message drops its attachment_id), oldest first.
	qDeleteOrphans = `DELETE FROM attachments WHERE id IN (
		SELECT a.id FROM attachments a
		WHERE a.created_at < ? AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.attachment_id = a.id)
		ORDER BY a.created_at LIMIT ?)`
	// The owner, or a current member of a conversation holding a message
	// (not deleted: a tombstone drops its attachment_id) with it.
	qAttachmentData = `SELECT a.id, a.content_type, a.size, a.width, a.height,
		CASE WHEN ? THEN COALESCE(a.thumb, a.data) ELSE a.data END
		FROM attachments a WHERE a.id = ? AND (a.owner_id = ? OR EXISTS (
			SELECT 1 FROM messages m JOIN members mb ON mb.conversation_id = m.conversation_id
			WHERE m.attachment_id = a.id AND mb.user_id = ? AND mb.left_pos IS NULL))`
)
