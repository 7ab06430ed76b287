package iox

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestAppendAll(t *testing.T) {
	want := strings.Repeat("parley ", 1000)
	buf := make([]byte, 0, 16)
	for range 2 { // the second read reuses the grown buffer
		got, err := AppendAll(buf[:0], iotest.OneByteReader(strings.NewReader(want)))
		if err != nil || string(got) != want {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
		buf = got
	}
	got, err := AppendAll([]byte("ab"), strings.NewReader("cd"))
	if err != nil || string(got) != "abcd" {
		t.Fatalf("appended %q, %v", got, err)
	}
}

func TestAppendAllError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader([]byte("part")), iotest.ErrReader(boom))
	got, err := AppendAll(nil, r)
	if !errors.Is(err, boom) || string(got) != "part" {
		t.Fatalf("got %q, %v; want the part read and the error", got, err)
	}
}

func BenchmarkAppendAll(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 200)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendAll(buf[:0], bytes.NewReader(msg))
	}
}
