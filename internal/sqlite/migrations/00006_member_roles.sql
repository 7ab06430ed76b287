-- Group roles (issue 15): a member of a group is an owner or a member.
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

-- +goose Down
ALTER TABLE members DROP COLUMN role;
