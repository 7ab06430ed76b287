package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
)

var errRefused = fmt.Errorf("dial: %w", syscall.ECONNREFUSED)

// refusalsDown returns refusals that have seen one refused dial.
func refusalsDown(t *testing.T) *refusals {
	r := &refusals{}
	if _, err := r.dial(t.Context(), newSemaphore(4), func(context.Context) (*wsConn, error) { return nil, errRefused }); !errorIsRefused(err) {
		t.Fatalf("dial: %v, want refused", err)
	}
	return r
}

// A client that retries while another client's dial is in flight and the
// server is known to refuse takes that dial's outcome: refused, it is
// refused without dialling; accepted, it dials itself.
func TestRefusalsShared(t *testing.T) {
	for _, probeRefused := range []bool{true, false} {
		t.Run(fmt.Sprintf("probe refused %v", probeRefused), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := refusalsDown(t)
				release := make(chan struct{})
				probeDone := make(chan error)
				go func() {
					_, err := r.dial(t.Context(), newSemaphore(4), func(context.Context) (*wsConn, error) {
						<-release
						if probeRefused {
							return nil, errRefused
						}
						return nil, nil
					})
					probeDone <- err
				}()
				synctest.Wait() // the probe is in flight
				dialled := false
				waiterDone := make(chan error)
				go func() {
					_, err := r.dial(t.Context(), newSemaphore(4), func(context.Context) (*wsConn, error) {
						dialled = true
						return nil, nil
					})
					waiterDone <- err
				}()
				synctest.Wait() // the waiter waits for the probe
				close(release)
				perr, werr := <-probeDone, <-waiterDone
				if probeRefused {
					if !errorIsRefused(perr) || !errorIsRefused(werr) || dialled {
						t.Fatalf("probe %v, waiter %v (dialled %v): want both refused, the waiter without a dial", perr, werr, dialled)
					}
					if r.shared.Load() != 1 || r.dials.Load() != 2 || r.refused.Load() != 2 {
						t.Fatalf("shared %d, dials %d, refused %d; want 1, 2, 2", r.shared.Load(), r.dials.Load(), r.refused.Load())
					}
					return
				}
				if perr != nil || werr != nil || !dialled {
					t.Fatalf("probe %v, waiter %v (dialled %v): want both through, the waiter by its own dial", perr, werr, dialled)
				}
				if r.shared.Load() != 0 || r.dials.Load() != 3 || r.down {
					t.Fatalf("shared %d, dials %d, down %v; want 0, 3, false", r.shared.Load(), r.dials.Load(), r.down)
				}
			})
		})
	}
}

// While the server is not known to refuse, every client dials itself, and
// a dial cut short by its context gives no verdict.
func TestRefusalsNotDown(t *testing.T) {
	r := refusalsDown(t)
	if _, err := r.dial(t.Context(), newSemaphore(4), func(context.Context) (*wsConn, error) { return nil, errors.New("reset") }); err == nil || errorIsRefused(err) {
		t.Fatalf("dial: %v", err)
	}
	if r.down {
		t.Fatal("still down after a dial that was not refused")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r = refusalsDown(t)
	_, _ = r.dial(ctx, newSemaphore(4), func(ctx context.Context) (*wsConn, error) { return nil, ctx.Err() })
	if !r.down {
		t.Fatal("a cancelled dial ended the refusing state")
	}
}

// A real refused connect is recognised as one.
func TestErrorIsRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = (&net.Dialer{}).DialContext(t.Context(), "tcp", addr)
	if !errorIsRefused(err) {
		t.Fatalf("dial to a closed port: %v, want refused", err)
	}
	d := newDialer(1, 2)
	_, err = d.dial(t.Context(), "ws://"+addr+"/v1/ws", 0)
	if !errorIsRefused(err) {
		t.Fatalf("WebSocket dial to a closed port: %v, want refused", err)
	}
}

// Dials queued for a slot when the server is found refusing do not dial:
// one probes, the others take its outcome.
func TestRefusalsQueuedJoinProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &refusals{}
		sem := newSemaphore(1)
		release := make(chan struct{})
		refuse := func(context.Context) (*wsConn, error) { return nil, errRefused }
		errs := make(chan error, 3)
		go func() {
			_, err := r.dial(t.Context(), sem, func(context.Context) (*wsConn, error) {
				<-release
				return nil, errRefused
			})
			errs <- err
		}()
		synctest.Wait() // the first dial holds the only slot
		for range 2 {
			go func() {
				_, err := r.dial(t.Context(), sem, refuse)
				errs <- err
			}()
		}
		synctest.Wait() // both wait for the slot
		close(release)
		for range 3 {
			if err := <-errs; !errorIsRefused(err) {
				t.Fatalf("dial: %v, want refused", err)
			}
		}
		if r.dials.Load() != 2 || r.shared.Load() != 1 {
			t.Fatalf("dials %d, shared %d; want 2 (the first and one probe), 1", r.dials.Load(), r.shared.Load())
		}
	})
}
