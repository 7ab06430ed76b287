package mediatest

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"testing"
)

// TestPNG16 decodes small PNG16 images whole: the hand-written stream is a
// valid PNG of transparent black, 16 bits per channel.
func TestPNG16(t *testing.T) {
	for _, sz := range [][2]int{{1, 1}, {3, 5}, {64, 64}, {300, 7}} {
		b := PNG16(sz[0], sz[1])
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%v: %v", sz, err)
		}
		m, ok := img.(*image.NRGBA64)
		if !ok || m.Bounds() != image.Rect(0, 0, sz[0], sz[1]) {
			t.Fatalf("%v: decoded a %T of %v", sz, img, img.Bounds())
		}
		if c := m.NRGBA64At(sz[0]-1, sz[1]-1); c != (color.NRGBA64{}) {
			t.Fatalf("%v: pixel %v, want transparent black", sz, c)
		}
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(PNG16(6324, 6324)))
	if err != nil || cfg.Width != 6324 || cfg.ColorModel != color.NRGBA64Model {
		t.Fatalf("bomb header: %+v, %v", cfg, err)
	}
}

func TestGIF(t *testing.T) {
	g, err := gif.DecodeAll(bytes.NewReader(GIF(30, 10, 10, 1000)))
	if err != nil || len(g.Image) != 30 || g.Config.Width != 10 {
		t.Fatalf("GIF: %v frames, %v", len(g.Image), err)
	}
}
