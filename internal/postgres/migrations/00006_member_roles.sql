-- People and groups (issue 15). Everything this issue adds is here (one
-- migration number per issue): roles, mute and archive, and events for
-- one member only.
--
-- Group roles: a member of a group is an owner or a member.
-- The creator of a group is its first owner. Existing groups: the creator
-- becomes owner while still a member; a group left without an owner that
-- way gets its longest-standing member (earliest current window, then
-- the smallest id) as owner. Direct conversations have members only.

-- +goose Up
ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member'));

UPDATE members SET role = 'owner'
WHERE left_pos IS NULL AND EXISTS (
    SELECT 1 FROM conversations c
    WHERE c.id = members.conversation_id AND c.kind = 'group' AND c.created_by = members.user_id);

UPDATE members SET role = 'owner'
WHERE left_pos IS NULL
AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = members.conversation_id AND c.kind = 'group')
AND NOT EXISTS (SELECT 1 FROM members o
    WHERE o.conversation_id = members.conversation_id AND o.left_pos IS NULL AND o.role = 'owner')
AND members.user_id = (SELECT f.user_id FROM members f
    WHERE f.conversation_id = members.conversation_id AND f.left_pos IS NULL
    ORDER BY f.joined_pos, f.user_id LIMIT 1);

-- Mute and archive: a member's own flags. archived_seq is the
-- conversation's last_seq when the member archived it (NULL: not
-- archived); it is archived while no message has a higher seq, so a new
-- message ends it without a write.
ALTER TABLE members ADD COLUMN muted boolean NOT NULL DEFAULT false;
ALTER TABLE members ADD COLUMN archived_seq bigint;

-- An event for one member only (flagsChanged); NULL: for the members.
ALTER TABLE events ADD COLUMN recipient TEXT;

-- +goose Down
ALTER TABLE events DROP COLUMN recipient;
ALTER TABLE members DROP COLUMN archived_seq;
ALTER TABLE members DROP COLUMN muted;
ALTER TABLE members DROP COLUMN role;
