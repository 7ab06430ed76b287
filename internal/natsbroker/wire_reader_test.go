package natsbroker

import (
	"encoding/binary"
	"testing"
)

// TestReaderVarints: a varint read moves past its bytes; one the message
// ends inside, or one longer than 64 bits, is errTruncated and reads as 0;
// after an error nothing more is read, whatever the bytes left.
func TestReaderVarints(t *testing.T) {
	b := binary.AppendUvarint(nil, 1<<40)
	b = binary.AppendVarint(b, -300)
	b = binary.AppendUvarint(b, 7)
	r := &reader{b: b}
	if u, v, w := r.uvarint(), r.varint(), r.uvarint(); u != 1<<40 || v != -300 || w != 7 || r.err != nil || len(r.b) != 0 {
		t.Fatalf("read %d %d %d, err %v, %d bytes left; want 1<<40 -300 7, no error, none left", u, v, w, r.err, len(r.b))
	}

	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"ends inside", []byte{0x80, 0x80}},
		{"over 64 bits", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	} {
		for _, signed := range []bool{false, true} {
			r := &reader{b: tc.b}
			var got int64
			if signed {
				got = r.varint()
			} else {
				got = int64(r.uvarint())
			}
			if got != 0 || r.err != errTruncated || len(r.b) != len(tc.b) {
				t.Errorf("%s (signed %v): %d, err %v, %d of %d bytes left; want 0, errTruncated, none read", tc.name, signed, got, r.err, len(r.b), len(tc.b))
			}
			// The error sticks: a valid varint after it is not read.
			r.b = []byte{5}
			if u, v := r.uvarint(), r.varint(); u != 0 || v != 0 || r.err != errTruncated || len(r.b) != 1 {
				t.Errorf("%s (signed %v): after the error read %d %d, err %v, %d bytes left; want nothing read", tc.name, signed, u, v, r.err, len(r.b))
			}
		}
	}
}
