// Package mediatest makes hostile images for tests: decompression bombs
// and GIFs padded with frames or comments.
package mediatest

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/png"
)

// uniform is a w x h image of one color whose At returns the same
// interface value every time, so encoding it allocates no canvas and no
// per-pixel garbage.
type uniform struct {
	b image.Rectangle
	c color.Color
	m color.Model
}

func (u uniform) ColorModel() color.Model { return u.m }
func (u uniform) Bounds() image.Rectangle { return u.b }
func (u uniform) At(x, y int) color.Color { return u.c }

// PNG16 returns a w x h 16-bit RGBA PNG (color type 6, depth 16) of one
// translucent color, compressed with BestSpeed: a 6324x6324 one is about
// 320 KB and decodes to 8 bytes per pixel (320 MiB). Making it takes a
// few seconds of CPU and no canvas.
func PNG16(w, h int) []byte {
	img := uniform{
		b: image.Rect(0, 0, w, h),
		c: color.NRGBA64{R: 0x1234, G: 0x5678, B: 0x9abc, A: 0xfedc},
		m: color.NRGBA64Model,
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		panic(err) // an in-memory encode of a valid image does not fail
	}
	return buf.Bytes()
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
