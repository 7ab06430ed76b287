package client_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// gradient is a w x h image with a gradient and an alpha ramp.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 90, uint8(128 + x*127/w)})
		}
	}
	return img
}

func encode(t *testing.T, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestShrinkImage: an image within the limits comes back byte for byte;
// one over maxSide or over maxSide x maxSide*3/4 pixels is scaled down,
// a PNG staying a PNG and a JPEG a JPEG; bytes that are no image are
// refused with unsupported.
func TestShrinkImage(t *testing.T) {
	cases := []struct {
		name, format  string
		w, h, maxSide int
		wantW, wantH  int
	}{
		{"small jpeg unchanged", "jpeg", 200, 150, 200, 200, 150},
		{"small png unchanged", "png", 150, 200, 200, 150, 200},
		{"wide jpeg to its side", "jpeg", 1000, 400, 200, 200, 80},
		{"tall png to its side", "png", 300, 600, 200, 100, 200},
		{"square to the pixel cap", "jpeg", 200, 200, 200, 173, 173},
		{"default side", "jpeg", 2500, 600, 0, 2048, 491},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := encode(t, c.format, gradient(c.w, c.h))
			out, err := client.ShrinkImage(bytes.NewReader(in), c.maxSide)
			if err != nil {
				t.Fatal(err)
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
			if err != nil || format != c.format || cfg.Width != c.wantW || cfg.Height != c.wantH {
				t.Fatalf("got %s %dx%d (%v), want %s %dx%d", format, cfg.Width, cfg.Height, err, c.format, c.wantW, c.wantH)
			}
			if unchanged := c.w == c.wantW && c.h == c.wantH; unchanged != bytes.Equal(in, out) {
				t.Fatalf("bytes returned as they are: %v, want %v", bytes.Equal(in, out), unchanged)
			}
		})
	}
	_, err := client.ShrinkImage(bytes.NewReader([]byte("not an image")), 0)
	var pe *parley.Error
	if !errors.As(err, &pe) || pe.Code != parley.EUNSUPPORTED {
		t.Fatalf("not an image: %v, want unsupported", err)
	}
}
