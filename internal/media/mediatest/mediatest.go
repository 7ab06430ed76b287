// Package mediatest makes hostile images for tests (decompression bombs,
// GIFs padded with frames or comments) and measures the heap they cost.
package mediatest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"runtime"
	"runtime/debug"
	"time"
)

// PNG16 returns a w x h 16-bit RGBA PNG (color type 6, depth 16) of
// transparent black: about 6 bytes per 1,000 pixels, which decode to 8
// bytes per pixel (a 6324x6324 one: 2 MB that decode to 320 MiB, the
// shape of the decompression bomb).
//
// It is written directly, not with image/png: compress/flate takes over a
// minute for 320 MB under the race detector, while the stream of an
// all-zero image is trivial to write. Its IDAT holds one fixed-Huffman
// deflate block (RFC 1951 3.2.6): a literal zero, then copies of 258 bytes
// at distance 1, zeros for the remainder and the end of block.
func PNG16(w, h int) []byte {
	raw := int64(h) * int64(1+8*w) // each row: filter byte 0, then 8 bytes a pixel
	var bw bitWriter
	bw.bits(1, 1)    // BFINAL
	bw.bits(1, 2)    // BTYPE 01: fixed Huffman
	bw.code(0x30, 8) // literal 0
	n := raw - 1
	for ; n >= 258; n -= 258 {
		bw.code(0xC5, 8) // length code 285: 258 bytes
		bw.code(0, 5)    // distance code 0: distance 1
	}
	for ; n > 0; n-- {
		bw.code(0x30, 8)
	}
	bw.code(0, 7) // end of block (256)
	bw.flush()

	z := append([]byte{0x78, 0x01}, bw.out...)
	// Adler-32 of raw zeros: s1 stays 1, s2 adds 1 a byte.
	z = binary.BigEndian.AppendUint32(z, uint32(raw%65521)<<16|1)

	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, 6, 0, 0, 0) // depth 16, RGBA, deflate, no filter set, not interlaced
	out := []byte("\x89PNG\r\n\x1a\n")
	out = chunk(out, "IHDR", ihdr)
	out = chunk(out, "IDAT", z)
	return chunk(out, "IEND", nil)
}

func chunk(out []byte, typ string, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	start := len(out)
	out = append(append(out, typ...), data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
}

// bitWriter packs a deflate bit stream: fields least significant bit
// first, Huffman codes most significant bit first.
type bitWriter struct {
	out  []byte
	acc  uint64
	nacc uint
}

func (b *bitWriter) bits(v uint64, n uint) {
	b.acc |= v << b.nacc
	b.nacc += n
	for b.nacc >= 8 {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
		b.nacc -= 8
	}
}

func (b *bitWriter) code(c uint64, n uint) {
	var r uint64
	for i := range n {
		r |= (c >> i & 1) << (n - 1 - i)
	}
	b.bits(r, n)
}

func (b *bitWriter) flush() {
	if b.nacc > 0 {
		b.out = append(b.out, byte(b.acc))
		b.acc, b.nacc = 0, 0
	}
}

// GIF returns an animated GIF of n 1x1 frames on a w x h canvas, then
// pad bytes of comment extensions after its frames.
func GIF(n, w, h, pad int) []byte {
	g := &gif.GIF{Config: image.Config{Width: w, Height: h}}
	pal := color.Palette{color.Black, color.White}
	for i := range n {
		f := image.NewPaletted(image.Rect(i%w, 0, i%w+1, 1), pal)
		f.SetColorIndex(i%w, 0, uint8(i%2))
		g.Image = append(g.Image, f)
		g.Delay = append(g.Delay, 1)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	// Comment extensions (0x21 0xFE, sub-blocks of up to 255 bytes, then
	// 0) go before the trailer, the last byte.
	out := append([]byte{}, b[:len(b)-1]...)
	for pad > 0 {
		out = append(out, 0x21, 0xFE)
		for i := 0; i < 64 && pad > 0; i++ {
			k := min(255, pad)
			out = append(out, byte(k))
			out = append(out, bytes.Repeat([]byte{'x'}, k)...)
			pad -= k
		}
		out = append(out, 0)
	}
	return append(out, b[len(b)-1])
}

// HeapPeak runs fn and returns how far the heap rose above what was live
// before it (sampled every sample and once at the end) and how many bytes
// fn allocated in all. gcPercent, when positive, is the GOGC to run fn
// under: a low one reclaims garbage at once, so the peak tracks live
// memory.
func HeapPeak(gcPercent int, sample time.Duration, fn func()) (peak, total uint64) {
	if gcPercent > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, alloc0 := ms.HeapAlloc, ms.TotalAlloc
	stop, done := make(chan struct{}), make(chan uint64)
	go func() { // owned by HeapPeak, which waits for it on done
		var m runtime.MemStats
		var hi uint64
		t := time.NewTicker(sample)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			hi = max(hi, m.HeapAlloc)
			select {
			case <-stop:
				done <- hi
				return
			case <-t.C:
			}
		}
	}()
	fn()
	runtime.ReadMemStats(&ms)
	close(stop)
	hi := max(<-done, ms.HeapAlloc)
	return hi - min(hi, base), ms.TotalAlloc - alloc0
}
