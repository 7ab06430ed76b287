package sqlstore

// The SQL both engines run, in one place. Placeholders are $1, $2, ...:
// PostgreSQL's own, and SQLite (modernc.org/sqlite) binds $N to the N-th
// argument too. What the engines write differently is the dialect's
// (Dialect, and dialectSQL built from it in New). Table aliases: c
// conversations, mb members, m messages, su the sender, a attachments,
// e events, eu the actor.
//
// A LIMIT is written "$n + 0", not "$n": SQLite reads a bare bound LIMIT
// while planning and then marks the statement to be prepared again
// whenever that parameter is bound anew, i.e. on every call, which undoes
// preparing it once. PostgreSQL reads it as the same integer.

const (
	// Users.
	qUserByID   = `SELECT ` + userCols + ` FROM users WHERE id = $1`
	qInsertUser = `INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`
	qRenameUser = `UPDATE users SET name = $1, name_key = $2 WHERE id = $3`
	qUserExists = `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`
	// QUsersWithoutKey and QSetNameKey fill name_key at open (each
	// engine's fillNameKeys: SQLite in one transaction, PostgreSQL row by
	// row, racing other nodes).
	QUsersWithoutKey = `SELECT id, name FROM users WHERE name_key IS NULL ORDER BY created_at, id`
	QSetNameKey      = `UPDATE users SET name_key = $1 WHERE id = $2 AND name_key IS NULL
		AND NOT EXISTS (SELECT 1 FROM users WHERE name_key = $1)`

	// Conversations.
	qDirectByPair       = `SELECT id FROM conversations WHERE kind = 'direct' AND direct_a = $1 AND direct_b = $2`
	qInsertConversation = `INSERT INTO conversations
		(id, kind, title, created_by, created_at, last_seq, last_activity_at, direct_a, direct_b)
		VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)`
	qRenameConversation = `UPDATE conversations SET title = $1 WHERE id = $2`
	qConversationRow    = `SELECT ` + conversationCols + ` FROM conversations c WHERE c.id = $1`

	// qViews lists conversations as a viewer sees them; qView is one of them.
	// The unread count is derived from positions, never stored.
	// The counts stop at parley.MaxUnreadCount (the LIMIT inside each),
	// and every scan of messages stays inside the conversation's newest
	// parley.ListWindow (listFloor): a row reads at most that many
	// messages whatever the backlog, deleted and hidden ones included.
	qViewsBase = `SELECT ` + conversationCols + `, mb.read_seq,
		(SELECT COUNT(*) FROM (SELECT 1 FROM messages x
			WHERE x.conversation_id = c.id AND x.seq > ` + unreadFloor + `
			AND x.sender_id != mb.user_id AND x.deleted_at IS NULL
			AND NOT ` + blockedSender + ` LIMIT ` + maxUnread + `) u),
		(SELECT COUNT(*) FROM (SELECT 1 FROM mentions y JOIN messages x ON x.id = y.message_id
			WHERE y.user_id = mb.user_id AND y.conversation_id = c.id AND y.seq > ` + unreadFloor + `
			AND NOT ` + blockedSender + ` LIMIT ` + maxUnread + `) u),
		mb.muted, ` + archivedExpr + `, ` + requestExpr + `,
		` + messageCols + `
		FROM members mb
		JOIN conversations c ON c.id = mb.conversation_id
		LEFT JOIN messages m ON m.conversation_id = c.id AND m.seq = (SELECT x.seq FROM messages x
			WHERE x.conversation_id = c.id AND x.seq > ` + listFloor + ` AND NOT ` + blockedSender + `
			ORDER BY x.seq DESC LIMIT 1)
		LEFT JOIN users su ON su.id = m.sender_id
		LEFT JOIN attachments a ON a.id = m.attachment_id` + parentJoinsFor + `mb.user_id
		WHERE mb.user_id = $1 AND mb.left_pos IS NULL`
	// maxUnread is parley.MaxUnreadCount in SQL (a constant: the
	// statements are; storetest's Unread checks the two agree).
	maxUnread = "99"
	// listFloor: the seq below the conversation's (c) newest
	// parley.ListWindow messages (storetest's ListWindow checks the
	// number). unreadFloor is the larger of it and the viewer's (mb)
	// read position, as one expression: given two lower bounds on seq,
	// SQLite ranges its index scan on one and filters on the other,
	// which could again walk from the read position.
	listFloor   = `c.last_seq - 500`
	unreadFloor = `CASE WHEN mb.read_seq > ` + listFloor + ` THEN mb.read_seq ELSE ` + listFloor + ` END`

	// A declined request is left out of the list (qView still finds it).
	qViews = qViewsBase + ` AND mb.request != 2 ORDER BY c.last_activity_at DESC, c.id DESC`
	qView  = qViewsBase + ` AND c.id = $2`

	// qPageIDs: the ids of a page of the list (args: viewer, the
	// activity and id the page starts after ("" for the top), limit), in
	// qViews's order. Cheap per conversation (the viewer's memberships
	// and the conversations' keys), so the views and members below are
	// read for the page's conversations only.
	qPageIDs = `SELECT c.id FROM members mb JOIN conversations c ON c.id = mb.conversation_id
		WHERE mb.user_id = $1 AND mb.left_pos IS NULL AND mb.request != 2
			AND ($3 = '' OR c.last_activity_at < $2 OR (c.last_activity_at = $2 AND c.id < $3))
		ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $4 + 0`
	// qViewsPage and qMembersOfPage are qViews and qMembersOfViewer for
	// the conversations of qPageIDs (same args).
	qViewsPage = qViewsBase + ` AND c.id IN (SELECT id FROM (` + qPageIDs + `) p)
		ORDER BY c.last_activity_at DESC, c.id DESC`
	qMembersOfPage = qMembersOfViewerBase + ` AND mine.conversation_id IN (SELECT id FROM (` + qPageIDs + `) p)` + membersOrder

	// archivedExpr: the member (mb) archived the conversation (c) and no
	// message came since.
	archivedExpr = `(mb.archived_seq IS NOT NULL AND mb.archived_seq >= c.last_seq)`

	// Members.
	qMembership = `SELECT read_seq FROM members
		WHERE conversation_id = $1 AND user_id = $2 AND left_pos IS NULL`
	qMembers = `SELECT mb.user_id, u.name, mb.read_seq, mb.role, ` + memberProfileCols + ` FROM members mb
		JOIN users u ON u.id = mb.user_id
		WHERE mb.conversation_id = $1 AND mb.left_pos IS NULL
		ORDER BY mb.joined_pos, mb.user_id`
	// qMembersOfViewer: every member of every conversation of the viewer.
	qMembersOfViewer = qMembersOfViewerBase + membersOrder
	// qMembersOfViewerBase is qMembersOfViewer but its order (also
	// qMembersOfPage's start).
	qMembersOfViewerBase = `SELECT mb.conversation_id, mb.user_id, u.name, ` + viewedReadSeq + `, mb.role, ` + viewedDeliveredSeq + profileCols + `
		FROM members mine
		JOIN members mb ON mb.conversation_id = mine.conversation_id AND mb.left_pos IS NULL
		JOIN users u ON u.id = mb.user_id
		WHERE mine.user_id = $1 AND mine.left_pos IS NULL`
	membersOrder = `
		ORDER BY mb.conversation_id, mb.joined_pos, mb.user_id`
	// qMembersFor is qMembers as viewer $2 sees them (viewedReadSeq).
	qMembersFor = `SELECT mb.user_id, u.name, ` + viewedReadSeq + `, mb.role, ` + viewedDeliveredSeq + profileCols + ` FROM members mb
		JOIN users u ON u.id = mb.user_id
		JOIN members mine ON mine.conversation_id = mb.conversation_id AND mine.user_id = $2 AND mine.left_pos IS NULL
		WHERE mb.conversation_id = $1 AND mb.left_pos IS NULL
		ORDER BY mb.joined_pos, mb.user_id`
	qMemberIDs = `SELECT user_id FROM members
		WHERE conversation_id = $1 AND left_pos IS NULL ORDER BY joined_pos, user_id`
	// A user added again gets a new window; the read position carries over.
	qInsertMember = `INSERT INTO members (conversation_id, user_id, joined_pos, read_seq, role)
		VALUES ($1, $2, $3, COALESCE((SELECT MAX(read_seq) FROM members
			WHERE conversation_id = $1 AND user_id = $2), 0), $4)`
	qSetRole = `UPDATE members SET role = $1
		WHERE conversation_id = $2 AND user_id = $3 AND left_pos IS NULL`
	qRemoveMember = `UPDATE members SET left_pos = $1
		WHERE conversation_id = $2 AND user_id = $3 AND left_pos IS NULL`
	qMemberFlags = `SELECT mb.muted, ` + archivedExpr + `, c.last_seq FROM members mb
		JOIN conversations c ON c.id = mb.conversation_id
		WHERE mb.conversation_id = $1 AND mb.user_id = $2 AND mb.left_pos IS NULL`
	qSetMuted = `UPDATE members SET muted = $1
		WHERE conversation_id = $2 AND user_id = $3 AND left_pos IS NULL`
	// archived_seq: the last_seq when archived, NULL to unarchive.
	qSetArchived = `UPDATE members SET archived_seq = $1
		WHERE conversation_id = $2 AND user_id = $3 AND left_pos IS NULL`
	// qDeliveredSeq: a member's delivered position as clients see it (never
	// below the read position) and the conversation's last seq.
	qDeliveredSeq = `SELECT ` + deliveredExpr + `, c.last_seq FROM members mb
		JOIN conversations c ON c.id = mb.conversation_id
		WHERE mb.conversation_id = $1 AND mb.user_id = $2 AND mb.left_pos IS NULL`
	qSetDeliveredSeq = `UPDATE members SET delivered_seq = $1
		WHERE conversation_id = $2 AND user_id = $3 AND left_pos IS NULL AND delivered_seq < $1`
	// deliveredExpr: reading implies delivery, so the delivered position
	// is the larger of the two positions (mb is the member).
	deliveredExpr = `CASE WHEN mb.delivered_seq > mb.read_seq THEN mb.delivered_seq ELSE mb.read_seq END`
	// memberProfileCols: a member's delivered position and profile (u is
	// the member's user), after qMembers' other columns.
	memberProfileCols = deliveredExpr + profileCols
	profileCols       = `, u.display_name, COALESCE(u.avatar_id, '')`
	// userCols: what ScanUser reads.
	userCols    = `id, name, created_at, display_name, COALESCE(avatar_id, '')`
	qSetProfile = `UPDATE users SET display_name = $1, avatar_id = $2 WHERE id = $3`
	// qConversationsOfUserAfter: the conversations a user ($1) is a
	// member of now, by id after $2, at most $3.
	qConversationsOfUserAfter = `SELECT conversation_id FROM members WHERE user_id = $1 AND left_pos IS NULL AND conversation_id > $2
		ORDER BY conversation_id LIMIT $3 + 0`
	qSetReadSeq = `UPDATE members SET read_seq = $1
		WHERE conversation_id = $2 AND user_id = $3 AND left_pos IS NULL AND read_seq < $1`
	contactsJoin = `JOIN conversations c ON c.id = mine.conversation_id`
	// contactsRule: mine and other are contacts through conversation c,
	// the rule of contactsWith as one condition on a pair, for consent
	// (qReach), which asks about one pair and so needs no bound.
	// wrote is a boolean in PostgreSQL and 0 or 1 in SQLite: both read
	// it as a truth value.
	// Users who blocked one another are no contacts, whatever they share.
	contactsRule = `(c.kind = 'group' OR (mine.wrote AND other.wrote))
		AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = mine.user_id AND b.blocked_id = other.user_id)
			OR (b.blocker_id = other.user_id AND b.blocked_id = mine.user_id))`

	// Messages.
	// qMessageByID reads a message for a write (args: id, conversation):
	// whole, its quote as no one reader's (the message of the write's
	// event; see hideQuoteFor for the writer's own).
	qMessageByID = `SELECT ` + messageCols + ` FROM messages m ` + messageJoinsFor + `NULL WHERE m.id = $1 AND m.conversation_id = $2`
	// QMessageByClientID finds the message a sender stored under a client
	// id (args: sender, client id), as the sender reads it: the
	// idempotency check of a send, whose resend answers it.
	QMessageByClientID = `SELECT ` + messageCols + ` FROM messages m ` + messageJoinsFor + `$1 WHERE m.sender_id = $1 AND m.client_id = $2`
	// qMessageByClientIDWhole is QMessageByClientID with the quote as no
	// one reader's (as qMessageByID): an edit's event carries it.
	qMessageByClientIDWhole = `SELECT ` + messageCols + ` FROM messages m ` + messageJoinsFor + `NULL WHERE m.sender_id = $1 AND m.client_id = $2`
	// QLastSeq is a conversation's last Seq.
	QLastSeq       = `SELECT last_seq FROM conversations WHERE id = $1`
	qDeleteMessage = `UPDATE messages SET deleted_at = $1, text = '', attachment_id = NULL, mentions = NULL WHERE id = $2`
	// A tombstone keeps no reactions.
	qDeleteReactions = `DELETE FROM reactions WHERE message_id = $1`
	// QReplyParent reads the message a send replies to (args: its id, the
	// send's conversation): a reply's check and its quote.
	QReplyParent = `SELECT p.id, p.seq, p.sender_id, pu.name, p.type, ` + quoteText + `, p.deleted_at
		FROM messages p JOIN users pu ON pu.id = p.sender_id WHERE p.id = $1 AND p.conversation_id = $2`

	// Edits.
	qEditByClientID = `SELECT message_id FROM message_edits WHERE sender_id = $1 AND client_id = $2`
	qInsertEdit     = `INSERT INTO message_edits (sender_id, client_id, message_id) VALUES ($1, $2, $3)`
	qEditMessage    = `UPDATE messages SET text = $1, edited_at = $2, mentions = $4 WHERE id = $3`

	// Reactions.
	qInsertReaction = `INSERT INTO reactions (message_id, user_id, emoji, pos) VALUES ($1, $2, $3, $4)`
	qDeleteReaction = `DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3`
	qHasReaction    = `SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3)`
	// qReactionKinds: how many distinct emoji a message holds, and whether
	// $2 is one of them.
	qReactionKinds = `SELECT COUNT(DISTINCT emoji), COALESCE(MAX(CASE WHEN emoji = $2 THEN 1 ELSE 0 END), 0)
		FROM reactions WHERE message_id = $1`
	// A page reads the seqs of one window (args: conversation, the
	// window's ends, limit, viewer) and leaves out the messages of users
	// the viewer blocked: qPageBefore the newest with lo <= seq < before,
	// qPageAfter the oldest with after < seq <= hi.
	qPageBefore = `SELECT ` + messageCols + ` FROM messages m ` + messageJoinsFor + `$5
		WHERE m.conversation_id = $1 AND m.seq >= $2 AND m.seq < $3 AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $5 AND b.blocked_id = m.sender_id)
		ORDER BY m.seq DESC LIMIT $4 + 0`
	qPageAfter = `SELECT ` + messageCols + ` FROM messages m ` + messageJoinsFor + `$5
		WHERE m.conversation_id = $1 AND m.seq > $2 AND m.seq <= $3 AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $5 AND b.blocked_id = m.sender_id)
		ORDER BY m.seq ASC LIMIT $4 + 0`
	// qMembershipLast: the conversation's last_seq when $2 is a member.
	qMembershipLast = `SELECT c.last_seq FROM members mb JOIN conversations c ON c.id = mb.conversation_id
		WHERE mb.conversation_id = $1 AND mb.user_id = $2 AND mb.left_pos IS NULL`

	// Events.
	qInsertEvent = `INSERT INTO events (pos, conversation_id, type, actor_id, message_id, data, at, recipient, shard)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	// One shard's events (args: after, limit, shard).
	// Read for no one reader: the audience's quotes are the hub's
	// (fillAudience sets QuoteHidden).
	qEvents = `SELECT ` + EventCols + ` FROM events e ` + EventJoinsFor + `NULL
		WHERE e.shard = $3 AND e.pos > $1 ORDER BY e.pos LIMIT $2 + 0`

	// Attachments.
	qAttachmentExists = `SELECT EXISTS (SELECT 1 FROM attachments WHERE id = $1)`
	// QAttachmentOwned reads an attachment when the sender owns it (args:
	// attachment id, sender): an image or file send's check.
	QAttachmentOwned  = `SELECT content_type, size, width, height, name FROM attachments WHERE id = $1 AND owner_id = $2`
	qInsertAttachment = `INSERT INTO attachments
		(id, owner_id, content_type, size, width, height, data, thumb, created_at, name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	// What an owner's attachments take: data and thumbnails.
	qUploadUsage = `SELECT COALESCE(SUM(size + COALESCE(octet_length(thumb), 0)), 0) FROM attachments WHERE owner_id = $1`
	// Attachments older than a time that no message holds (a deleted
	// message drops its attachment_id) and that are nobody's avatar,
	// oldest first.
	qDeleteOrphans = `DELETE FROM attachments WHERE id IN (
		SELECT a.id FROM attachments a
		WHERE a.created_at < $1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.attachment_id = a.id)
		AND NOT EXISTS (SELECT 1 FROM users au WHERE au.avatar_id = a.id)
		ORDER BY a.created_at LIMIT $2)`
	// The bytes: the data, or with $1 (thumb) the thumbnail, the data of
	// an image stored without one, and none (NULL) of a file, which has
	// no thumbnail. Who may read them: attachmentAccess.
	qAttachmentData = `SELECT a.id, a.content_type, a.size, a.width, a.height, a.name,
		CASE WHEN NOT CAST($1 AS BOOLEAN) THEN a.data WHEN a.name = '' THEN COALESCE(a.thumb, a.data) END
		FROM attachments a` + attachmentAccess
	// What qAttachmentData reads, with the length of its bytes in their
	// place (0 for a file's thumbnail): size is the data's, and
	// octet_length of a column reads its length, not its bytes (SQLite
	// takes it from the record header; PostgreSQL from the TOAST
	// pointer), so a download learns what it will hold before it loads
	// it. The same users, by the same clause.
	qAttachmentInfo = `SELECT a.id, a.content_type, a.size, a.width, a.height, a.name,
		CASE WHEN NOT CAST($1 AS BOOLEAN) THEN a.size WHEN a.name = '' THEN COALESCE(octet_length(a.thumb), a.size) ELSE 0 END
		FROM attachments a` + attachmentAccess
	// $5 bytes of what qAttachmentData reads from byte $4 (1 the first),
	// to the same users: a download reads its attachment a chunk at a
	// time. substr of a column, not of the CASE's value, so that
	// PostgreSQL fetches the slice alone: of data stored EXTERNAL
	// (migration 00027) only the TOAST chunks it spans. SQLite has no
	// such path in SQL (substr reads the whole blob, and the driver has
	// no incremental blob I/O): it keeps the data in chunk rows
	// (ChunkedAttachments, qAttachmentChunks).
	qAttachmentRead = `SELECT CASE WHEN NOT CAST($1 AS BOOLEAN) THEN substr(a.data, $4, $5)
		WHEN a.name = '' THEN COALESCE(substr(a.thumb, $4, $5), substr(a.data, $4, $5)) END
		FROM attachments a` + attachmentAccess
	// Of a ChunkedAttachments dialect's attachment (Store.readChunks):
	// qAttachmentThumb is whether what qAttachmentData reads (with $1,
	// thumb) is the data (chunks), and if not, $5 bytes of it from byte $4
	// (NULL for a file); qAttachmentChunks reads the data's chunks $4 to
	// $5, in order. The same users, by the same clause.
	qAttachmentThumb = `SELECT NOT CAST($1 AS BOOLEAN) OR (a.name = '' AND a.thumb IS NULL),
		CASE WHEN CAST($1 AS BOOLEAN) AND a.name = '' THEN substr(a.thumb, $4, $5) END
		FROM attachments a` + attachmentAccess
	// ($1 is not used: SQLite binds by name, and all the attachment
	// statements take the same arguments.)
	qAttachmentChunks = `SELECT c.n, c.data FROM attachments a
		JOIN attachment_chunks c ON c.attachment_id = a.id AND c.n >= $4 AND c.n <= $5` + attachmentAccess + `
		ORDER BY c.n`
	qInsertAttachmentChunk = `INSERT INTO attachment_chunks (attachment_id, n, data) VALUES ($1, $2, $3)`
)

// attachmentAccess is who may read attachment $2 ($3 the reader), for
// qAttachmentData and qAttachmentInfo alike: the owner, or a current
// member of a conversation holding a message (not deleted: a tombstone
// drops its attachment_id) with it, or, for the owner's current avatar, a
// user who shares a conversation with the owner (the audience of their
// profile).
const attachmentAccess = ` WHERE a.id = $2 AND (a.owner_id = $3 OR EXISTS (
		SELECT 1 FROM messages m JOIN members mb ON mb.conversation_id = m.conversation_id
		WHERE m.attachment_id = a.id AND mb.user_id = $3 AND mb.left_pos IS NULL) OR EXISTS (
		SELECT 1 FROM users au
		JOIN members mo ON mo.user_id = au.id AND mo.left_pos IS NULL
		JOIN members mv ON mv.conversation_id = mo.conversation_id AND mv.user_id = $3 AND mv.left_pos IS NULL
		WHERE au.id = a.owner_id AND au.avatar_id = a.id))`

// maxContacts and maxContactGroups are parley.MaxContacts and
// parley.MaxContactGroups in SQL (constants, like maxUnread; storetest's
// ContactsLimit and ContactsWindow check they agree).
const (
	maxContacts      = "1000"
	maxContactGroups = "100"
)

// contactsWith is the WITH list of dialectSQL.contacts and contactsOf,
// for the users mine.user_id meets cond ("me" below): their contacts, the
// users who see each other's presence, as the rows of kept numbered n
// from 1 per user; the statements keep n <= parley.MaxContacts.
//
// A contact is a current member of a group with me, or the other user of
// a direct conversation in which both wrote (members.wrote; opening one
// with a stranger reveals nothing), unless one blocked the other. Only
// some of me's conversations count (recent): the parley.MaxContacts most
// recently active direct ones me wrote in and the
// parley.MaxContactGroups most recently active groups, in the
// conversation list's order (kr counts within each kind). So the member
// rows read are bounded by that many conversations of 2 and of at most
// parley.MaxGroupMembers, however many groups others added me to.
// Reading recent still reads every membership of me, as the conversation
// list does, but only the membership and the conversation's row. Each
// candidate ranks by the most recent conversation it shares with me
// (best: rk numbers recent's conversations), ties by id, and kept numbers
// them in that order: members of recent conversations win. Blocks are
// checked once per candidate, before numbering, so a blocked user takes
// no place.
//
// The rule is per user, so it is not symmetric: A may be among B's kept
// contacts while B is not among A's (docs/protocol.md, section 6,
// Contacts limit). wrote is a boolean in PostgreSQL and 0 or 1 in
// SQLite: both read it as a truth value.
func contactsWith(cond string) string {
	return `recent AS (
		SELECT me, conversation_id, kind,
			ROW_NUMBER() OVER (PARTITION BY me ORDER BY at DESC, conversation_id DESC) AS rk
		FROM (
			SELECT mine.user_id AS me, mine.conversation_id, c.kind, c.last_activity_at AS at,
				ROW_NUMBER() OVER (PARTITION BY mine.user_id, c.kind ORDER BY c.last_activity_at DESC, c.id DESC) AS kr
			FROM members mine ` + contactsJoin + `
			WHERE ` + cond + ` AND mine.left_pos IS NULL AND (c.kind = 'group' OR mine.wrote)) w
		WHERE kr <= CASE WHEN kind = 'group' THEN ` + maxContactGroups + ` ELSE ` + maxContacts + ` END),
	ranked AS (
		SELECT r.me, other.user_id AS id, MIN(r.rk) AS best FROM recent r
		JOIN members other ON other.conversation_id = r.conversation_id AND other.left_pos IS NULL
		WHERE other.user_id != r.me AND (r.kind = 'group' OR other.wrote)
		GROUP BY r.me, other.user_id),
	kept AS (
		SELECT k.me, k.id, ROW_NUMBER() OVER (PARTITION BY k.me ORDER BY k.best, k.id) AS n FROM ranked k
		WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = k.me AND b.blocked_id = k.id)
			OR (b.blocker_id = k.id AND b.blocked_id = k.me)))`
}

// dialectSQL is the SQL built from the dialect's parts, once, in New.
type dialectSQL struct {
	head, heads, eventsFor, replayBound    string
	userByName, credentials, userNameTaken string
	windows, usersOf, contacts, contactsOf string
	reactionsOf                            string
	blocksAmong, blocksWithin, sendersOf   string
}

func buildSQL(d Dialect) dialectSQL {
	// A name is looked up by its key (parley.NameKey), or by the name
	// itself for the users whose look-alike name predates name_key and
	// who hold no key (see migration 00003); the exact name wins.
	// Args: name, key.
	byName := d.NameIs("name", "$1")
	return dialectSQL{
		head:        d.HeadSQL(),
		heads:       headsSQL(d),
		eventsFor:   d.EventsForSQL(),
		replayBound: d.ReplayBoundSQL(),
		userByName: `SELECT ` + userCols + ` FROM users
		WHERE name_key = $2 OR ` + byName + ` ORDER BY ` + byName + ` DESC LIMIT 1`,
		credentials: `SELECT ` + userCols + `, password_hash FROM users
		WHERE (name_key = $2 OR ` + byName + `) AND password_hash IS NOT NULL ORDER BY ` + byName + ` DESC LIMIT 1`,
		// The name of another user (not $3) who holds this name or its
		// key (args: name, key, id).
		userNameTaken: `SELECT name FROM users WHERE (name_key = $2 OR ` + byName + `) AND id != $3 LIMIT 1`,
		// The membership windows of a set of conversations, to compute
		// the audience of replayed events.
		windows: `SELECT conversation_id, user_id, joined_pos, left_pos, request != 0 AND NOT wrote FROM members
		WHERE ` + d.InList("conversation_id", "$1") + ` ORDER BY joined_pos, user_id`,
		// The reactions of a set of messages (args: ids, viewer): per
		// message, each emoji in the order of first use, its count and
		// whether the viewer is among its users.
		reactionsOf: `SELECT r.message_id, r.emoji, COUNT(*), MAX(CASE WHEN r.user_id = $2 THEN 1 ELSE 0 END)
		FROM reactions r WHERE ` + d.InList("r.message_id", "$1") + `
		GROUP BY r.message_id, r.emoji ORDER BY r.message_id, MIN(r.pos)`,
		// The blocks made by or against a set of users.
		blocksAmong: `SELECT blocker_id, blocked_id FROM blocks WHERE ` + d.InList("blocker_id", "$1") + ` OR ` + d.InList("blocked_id", "$1"),
		// Both ends in $1: the primary key (blocker_id, blocked_id) finds them.
		blocksWithin: `SELECT blocker_id, blocked_id FROM blocks WHERE ` + d.InList("blocker_id", "$1") + ` AND ` + d.InList("blocked_id", "$1"),
		// The senders of a set of messages (args: ids): id, sender.
		sendersOf: `SELECT id, sender_id FROM messages WHERE ` + d.InList("id", "$1"),
		// A set of users.
		usersOf: `SELECT ` + userCols + ` FROM users WHERE ` + d.InList("id", "$1"),
		// A user's contacts (args: user id).
		contacts: `WITH ` + contactsWith(`mine.user_id = $1`) + `
		SELECT me, id FROM kept WHERE n <= ` + maxContacts + ` ORDER BY me, id`,
		// The contacts of a set of users: contacts for each.
		contactsOf: `WITH ` + contactsWith(d.InList("mine.user_id", "$1")) + `
		SELECT me, id FROM kept WHERE n <= ` + maxContacts + ` ORDER BY me, id`,
	}
}

// Integrations (migration 00007): the webhook outbox and the server API's
// keys and bans. Times are Unix milliseconds in both engines.
const (
	// One cursor row per shard (migration 00014); no row: -1.
	qWebhookCursor      = `SELECT pos FROM webhook_cursor WHERE shard = $1`
	qMoveWebhookCursor  = `UPDATE webhook_cursor SET pos = $1 WHERE shard = $2 AND pos = $3`
	qStartWebhookCursor = `INSERT INTO webhook_cursor (shard, pos) VALUES ($1, $2) ON CONFLICT (shard) DO NOTHING`
	qInsertWebhook      = `INSERT INTO webhook_outbox (endpoint, shard, pos, conversation_id, payload, attempts, next_at, created_at)
		VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (endpoint, shard, pos) DO NOTHING`
	// The due deliveries of an endpoint that are the oldest pending of
	// their conversation: a conversation's later events wait for it.
	qDueWebhooks = `SELECT o.endpoint, o.shard, o.pos, o.conversation_id, o.payload, o.attempts, o.next_at, o.created_at
		FROM webhook_outbox o
		WHERE o.endpoint = $1 AND o.next_at <= $2 AND NOT EXISTS (
			SELECT 1 FROM webhook_outbox p
			WHERE p.endpoint = o.endpoint AND p.conversation_id = o.conversation_id AND p.pos < o.pos)
		ORDER BY o.pos LIMIT $3 + 0`
	qLeaseWebhook   = `UPDATE webhook_outbox SET attempts = attempts + 1, next_at = $1 WHERE endpoint = $2 AND shard = $3 AND pos = $4`
	qFinishWebhook  = `DELETE FROM webhook_outbox WHERE endpoint = $1 AND shard = $2 AND pos = $3`
	qRetryWebhook   = `UPDATE webhook_outbox SET next_at = $1 WHERE endpoint = $2 AND shard = $3 AND pos = $4`
	qWebhookBacklog = `SELECT endpoint, COUNT(*) FROM webhook_outbox GROUP BY endpoint`

	qInsertAPIKey = `INSERT INTO api_keys (id, name, hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)`
	qAPIKeyByHash = `SELECT id, name, scopes, created_at, revoked_at FROM api_keys WHERE hash = $1`
	qAPIKeys      = `SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at, id`
	qRevokeAPIKey = `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`
	qBanUser      = `INSERT INTO user_bans (user_id, banned_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING`
	qBannedUsers  = `SELECT user_id FROM user_bans ORDER BY user_id`
	// The log of changed users (parley.UserChangeLog; PostgreSQL's
	// migration 00025, SQLite's 00022): the counter row's lock, held to
	// the commit, hands the numbers out in commit order.
	qNextUserChange   = `UPDATE user_change_counter SET seq = seq + 1 RETURNING seq`
	qSetUserChange    = `UPDATE users SET change_seq = $1 WHERE id = $2`
	qUserChangeMark   = `SELECT seq FROM user_change_counter`
	qUserChangesAfter = `SELECT u.id, u.change_seq, EXISTS (SELECT 1 FROM user_bans b WHERE b.user_id = u.id)
		FROM users u WHERE u.change_seq > $1 ORDER BY u.change_seq LIMIT $2`
	// An erasure's progress lives with the user's ban (migrations
	// 00019 and 00022, 00021 and 00024): none without a ban.
	qEraseProgress    = `SELECT erase_after, erase_conversations FROM user_bans WHERE user_id = $1`
	qSetEraseProgress = `UPDATE user_bans SET erase_after = $2, erase_conversations = $3 WHERE user_id = $1`
)

// qMessagesBySender pages through what a user sent in the order of the
// (sender_id, client_id) unique index (args: sender, after client id,
// limit): the export and erasure of a user's data, the quotes as the
// user reads them.
const qMessagesBySender = `SELECT ` + messageCols + ` FROM messages m ` + messageJoinsFor + `$1
	WHERE m.sender_id = $1 AND m.client_id > $2 ORDER BY m.client_id LIMIT $3 + 0`
