package server

import "github.com/parleychat/parley"

// Attachment URLs are not stored: every reply and event that carries a
// message or an attachment gets them here, from the attachment's id, on
// the way out (HTTP replies, WebSocket replies, event frames, webhook
// payloads). attachmentPath is the one place the path is built.

// attachmentPath is the path an attachment is served at; its thumbnail is
// at attachmentPath(id) + "/thumb".
func attachmentPath(id string) string { return "/v1/attachments/" + id }

// withAttachmentURLs returns a with its URL and ThumbURL filled in.
func withAttachmentURLs(a parley.Attachment) parley.Attachment {
	a.URL = attachmentPath(a.ID)
	a.ThumbURL = a.URL + "/thumb"
	return a
}

// withURLs returns ev with its message's attachment URLs filled in,
// copying what it changes: events are shared between receivers.
func withURLs(ev parley.Event) parley.Event {
	if ev.Message != nil {
		ev.Message = messageURLs(ev.Message)
	}
	if ev.Conversation != nil && ev.Conversation.LastMessage != nil {
		c := *ev.Conversation
		c.LastMessage = messageURLs(c.LastMessage)
		ev.Conversation = &c
	}
	return ev
}

// messageURLs returns m with its attachment's URLs filled in, copying
// what it changes; m itself when there is nothing to fill.
func messageURLs(m *parley.Message) *parley.Message {
	if m == nil || m.Attachment == nil || m.Attachment.URL != "" {
		return m
	}
	cp := *m
	a := withAttachmentURLs(*m.Attachment)
	cp.Attachment = &a
	return &cp
}

// conversationURLs fills in the URLs of c's last message and gives it a
// non-nil member list (JSON [] rather than null).
func conversationURLs(c parley.Conversation) parley.Conversation {
	c.LastMessage = messageURLs(c.LastMessage)
	c.Members = nonNil(c.Members)
	return c
}
