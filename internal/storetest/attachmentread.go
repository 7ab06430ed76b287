package storetest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"runtime"
	"testing"

	"github.com/parleychat/parley"
)

// testReadAttachment: ReadAttachment reads any slice of an attachment's
// bytes, as io.ReaderAt does, to the users AttachmentData serves and no
// other: chunks that add up to the whole (sha256 the same as stored),
// slices across any offset, a short read with io.EOF at the end, each
// variant's bytes (an image's thumbnail, the data of an image without
// one, none of a file's thumbnail), ENOTFOUND to an outsider and for an
// unknown id, EINVALID for a negative offset.
func testReadAttachment(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "reada"), newUser(t, s, "readb")
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i*131>>3 ^ i>>13)
	}
	thumb := []byte("a thumbnail of a few bytes")
	put := func(at parley.Attachment, data, thumb []byte) {
		t.Helper()
		if err := s.PutAttachment(ctx(t), a.ID, at, data, thumb, 0); err != nil {
			t.Fatalf("PutAttachment(%s): %v", at.ID, err)
		}
	}
	put(parley.Attachment{ID: "read-file", ContentType: "application/octet-stream", Size: int64(len(data)), Name: "r.bin"}, data, nil)
	put(parley.Attachment{ID: "read-img", ContentType: "image/png", Size: 70, Width: 2, Height: 2}, data[:70], thumb)
	put(parley.Attachment{ID: "read-nothumb", ContentType: "image/png", Size: 50, Width: 1, Height: 1}, data[100:150], nil)

	// The whole, in chunks that do not divide it.
	h := sha256.New()
	buf := make([]byte, 1<<20-7)
	for off := int64(0); off < int64(len(data)); {
		n, err := s.ReadAttachment(ctx(t), a.ID, "read-file", false, off, buf)
		if n == 0 || (err != nil && err != io.EOF) || (err == io.EOF) != (off+int64(n) == int64(len(data))) {
			t.Fatalf("ReadAttachment(off %d, %d bytes) = %d, %v", off, len(buf), n, err)
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	if got, want := h.Sum(nil), sha256.Sum256(data); !bytes.Equal(got, want[:]) {
		t.Errorf("the chunks' sha256 %x, the data's %x", got, want)
	}

	for _, tt := range []struct {
		what  string
		id    string
		thumb bool
		off   int64
		n     int
		want  []byte
		eof   bool
	}{
		{"one byte", "read-file", false, 2_500_000, 1, data[2_500_000:2_500_001], false},
		{"the first bytes", "read-file", false, 0, 10, data[:10], false},
		{"the last byte", "read-file", false, int64(len(data)) - 1, 1, data[len(data)-1:], false},
		{"past the end", "read-file", false, int64(len(data)) - 5, 10, data[len(data)-5:], true},
		{"at the end", "read-file", false, int64(len(data)), 10, nil, true},
		{"an image's data", "read-img", false, 60, 10, data[60:70], false},
		{"an image's thumbnail", "read-img", true, 2, 5, thumb[2:7], false},
		{"no thumbnail: the data", "read-nothumb", true, 10, 40, data[110:150], false},
		{"a file's thumbnail: none", "read-file", true, 0, 10, nil, true},
	} {
		p := make([]byte, tt.n)
		n, err := s.ReadAttachment(ctx(t), a.ID, tt.id, tt.thumb, tt.off, p)
		if !bytes.Equal(p[:n], tt.want) || (err == io.EOF) != tt.eof || (err != nil && err != io.EOF) {
			t.Errorf("%s: ReadAttachment(%s, thumb %v, off %d, %d bytes) = %q, %v; want %q (io.EOF: %v)",
				tt.what, tt.id, tt.thumb, tt.off, tt.n, p[:n], err, tt.want, tt.eof)
		}
	}

	p := make([]byte, 10)
	_, err := s.ReadAttachment(ctx(t), b.ID, "read-file", false, 0, p)
	wantCode(t, "an outsider's ReadAttachment", err, parley.ENOTFOUND)
	_, err = s.ReadAttachment(ctx(t), a.ID, "read-none", false, 0, p)
	wantCode(t, "ReadAttachment of an unknown id", err, parley.ENOTFOUND)
	_, err = s.ReadAttachment(ctx(t), a.ID, "read-file", false, -1, p)
	wantCode(t, "ReadAttachment at a negative offset", err, parley.EINVALID)
}

// AttachmentDataCopies: AttachmentData of a 16 MiB attachment allocates
// one object of its size, the bytes it returns, and no second copy of
// them: it reads them a chunk at a time into that buffer
// (ReadAttachment), so what it holds at once is the attachment and a
// chunk. Before, the driver's copy of the whole value and the copy
// scanned from it were both on the heap at once (SQLite: modernc's blob
// and database/sql's clone; PostgreSQL: pgx's read buffer and the
// decoded value). Counted with every allocation profiled
// (runtime.MemProfileRate 1), not timed; not parallel: the profile is
// the process's.
func AttachmentDataCopies(t *testing.T, s parley.Store) {
	const size = 16 << 20
	u := newUser(t, s, "copies")
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	a := parley.Attachment{ID: "copies-big", ContentType: "application/octet-stream", Size: size, Name: "big.bin"}
	if err := s.PutAttachment(ctx(t), u.ID, a, data, nil, 0); err != nil {
		t.Fatal(err)
	}
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	large := func() int64 { // objects of at least size allocated so far (as of the last GC)
		runtime.GC()
		runtime.GC() // a profile shows the allocations of the cycle before the last
		var n int64
		k, _ := runtime.MemProfile(nil, true)
		recs := make([]runtime.MemProfileRecord, k+k/4) // far less than size itself
		k, _ = runtime.MemProfile(recs, true)
		for _, r := range recs[:min(k, len(recs))] {
			if r.AllocObjects > 0 && r.AllocBytes/r.AllocObjects >= size {
				n += r.AllocObjects
			}
		}
		return n
	}
	runtime.MemProfileRate = 1
	before := large()
	_, got, err := s.AttachmentData(ctx(t), u.ID, a.ID, false)
	after := large()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("AttachmentData: %d bytes, %v; want the data", len(got), err)
	}
	if n := after - before; n != 1 {
		t.Errorf("AttachmentData of %d MiB allocated %d objects of its size or more, want 1 (the bytes it returns)", size>>20, n)
	}
}
