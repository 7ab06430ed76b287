package subscriptions_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/parleychat/parley/internal/subscriptions"
)

var errClosed = errors.New("test: closed")

type sub struct{ stops int }

func open(s *sub) func() (*sub, error) { return func() (*sub, error) { return s, nil } }

func stop(s *sub) { s.stops++ }

func members(t *testing.T, set *subscriptions.Set[*sub]) []*sub {
	t.Helper()
	var got []*sub
	if err := set.Range(func(s *sub) { got = append(got, s) }); err != nil {
		t.Fatalf("Range: %v", err)
	}
	return got
}

// TestSet: the life cycle both brokers rely on. A stop func removes its
// subscription and stops it once however often it is called; a failed
// open adds nothing; Close hands over what is left, once; after it Add
// and Range return the broker's ErrClosed, and a stop func handed out
// before still stops (the broker's stop is idempotent).
func TestSet(t *testing.T) {
	set := &subscriptions.Set[*sub]{ErrClosed: errClosed}
	a, b := &sub{}, &sub{}
	stopA, err := set.Add(open(a), stop)
	if err != nil {
		t.Fatal(err)
	}
	stopB, err := set.Add(open(b), stop)
	if err != nil {
		t.Fatal(err)
	}
	failed := errors.New("open failed")
	if _, err := set.Add(func() (*sub, error) { return nil, failed }, stop); err != failed {
		t.Fatalf("Add with a failing open: %v, want its error", err)
	}
	if got := members(t, set); len(got) != 2 || !slices.Contains(got, a) || !slices.Contains(got, b) {
		t.Fatalf("members %v, want a and b", got)
	}

	stopA()
	stopA()
	if a.stops != 1 {
		t.Fatalf("a stopped %d times, want 1", a.stops)
	}
	if got := members(t, set); !slices.Equal(got, []*sub{b}) {
		t.Fatalf("members after stopping a: %v, want b", got)
	}

	if set.Closed() {
		t.Fatal("Closed before Close")
	}
	subs, first := set.Close()
	if !first || !slices.Equal(subs, []*sub{b}) {
		t.Fatalf("Close: %v, %v; want [b], true", subs, first)
	}
	if subs, first := set.Close(); first || subs != nil {
		t.Fatalf("second Close: %v, %v; want nothing, false", subs, first)
	}
	if !set.Closed() {
		t.Fatal("not Closed after Close")
	}
	if _, err := set.Add(open(&sub{}), stop); err != errClosed {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
	if err := set.Range(func(*sub) { t.Error("Range called fn after Close") }); err != errClosed {
		t.Fatalf("Range after Close: %v, want ErrClosed", err)
	}
	stopB()
	if b.stops != 1 {
		t.Fatalf("b stopped %d times by its stop func after Close, want 1", b.stops)
	}
}
