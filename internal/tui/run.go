package tui

import (
	"context"
	"errors"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley/client"
)

// handlerID names the listener and event handler Attach registers.
const handlerID = "tui"

// Attach makes c's callbacks reach the model through notify: every event
// and connection change. Detach undoes it. The callbacks run on c's
// callback goroutine; notify may block there (tea.Program.Send waits for
// the event loop), which holds up later callbacks but never the connection.
func Attach(c *client.Client, notify func(tea.Msg)) {
	c.AddEventHandler(handlerID, func(ev client.Event) { notify(eventMsg{ev: ev}) })
	c.AddConnectionListener(handlerID, listener{notify: notify})
}

// Detach removes what Attach registered.
func Detach(c *client.Client) {
	c.RemoveEventHandler(handlerID)
	c.RemoveConnectionListener(handlerID)
}

// listener turns every connection change into a clientChangedMsg.
type listener struct {
	client.NopListener
	notify func(tea.Msg)
}

func (l listener) OnConnecting(client.StatusChange)       { l.notify(clientChangedMsg{}) }
func (l listener) OnConnected(client.StatusChange)        { l.notify(clientChangedMsg{}) }
func (l listener) OnReconnecting(client.StatusChange)     { l.notify(clientChangedMsg{}) }
func (l listener) OnDisconnected(client.StatusChange)     { l.notify(clientChangedMsg{}) }
func (l listener) OnFeatureThrottled(client.StatusChange) { l.notify(clientChangedMsg{}) }

// Run runs the terminal client on c (not yet connected) until the user
// quits or ctx ends, then closes c. opts go to tea.NewProgram (tests give
// their own input and output).
func Run(ctx context.Context, c *client.Client, cfg Config, opts ...tea.ProgramOption) error {
	var p *tea.Program
	// p is set before Attach, and callbacks start only after Attach, so
	// the callback goroutine sees it.
	cfg.Notify = func(msg tea.Msg) { p.Send(msg) }
	m := New(c, cfg)
	p = tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, opts...)...)
	Attach(c, cfg.Notify)
	_, err := p.Run()
	m.Stop()
	Detach(c)
	// Send is a no-op once Run returned, so a callback blocked in it ends
	// and Close (which waits for it) returns.
	cerr := c.Close()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		err = nil // SIGINT/SIGTERM: a normal way out
	}
	return errors.Join(err, cerr)
}
