package media

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media/mediatest"
)

func noisy(img interface {
	image.Image
	Set(x, y int, c color.Color)
}) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := uint8(x*7 + y*13 + x*y)
			img.Set(x, y, color.NRGBA{v, v ^ 0x5a, uint8(x), 255})
		}
	}
}

// TestCostBoundsDecode checks Cost against what Decode really holds: its
// peak heap, with garbage reclaimed as it goes, is within the upload's
// Cost. (Its total allocation can be higher: the PNG encoder boxes every
// pixel of a 16-bit image, garbage the collector reclaims as it goes.)
func TestCostBoundsDecode(t *testing.T) {
	const w, h = 1600, 1200
	rect := image.Rect(0, 0, w, h)
	nrgba, gray, gray16 := image.NewNRGBA(rect), image.NewGray(rect), image.NewGray16(rect)
	pal := image.NewPaletted(rect, color.Palette{color.Black, color.White, color.NRGBA{255, 0, 0, 255}})
	for _, img := range []interface {
		image.Image
		Set(x, y int, c color.Color)
	}{nrgba, gray, gray16, pal} {
		noisy(img)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"png nrgba", encode(t, "png", nrgba)},
		{"png gray", encode(t, "png", gray)},
		{"png gray16", encode(t, "png", gray16)},
		{"png paletted", encode(t, "png", pal)},
		{"png 16-bit uniform", mediatest.PNG16(w, h)},
		{"jpeg ycbcr", encode(t, "jpeg", nrgba)},
		{"jpeg gray", encode(t, "jpeg", gray)},
		{"gif", encode(t, "gif", pal)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Inspect(bytes.NewReader(tt.data), Limits{DecodeBudget: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			var img Image
			peak, total := mediatest.HeapPeak(5, 100*time.Microsecond, func() { img, err = u.Decode() })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: peak heap %.1f MiB (allocated %.1f MiB), Cost %.1f MiB, stored %d bytes", tt.name,
				float64(peak)/(1<<20), float64(total)/(1<<20), float64(u.Cost())/(1<<20), len(img.Data))
			if int64(peak) > u.Cost() {
				t.Errorf("Decode's heap peaked at %d bytes, over its Cost of %d", peak, u.Cost())
			}
		})
	}
}

// TestBudgetRefusesBeforeDecoding: the 16-bit 6324x6324 PNG (just under
// 40 megapixels, 320 MiB decoded) is refused by Inspect, which reads only
// its header: the heap does not grow by the canvas.
func TestBudgetRefusesBeforeDecoding(t *testing.T) {
	start := time.Now()
	bomb := mediatest.PNG16(6324, 6324)
	t.Logf("bomb: %d bytes, made in %v", len(bomb), time.Since(start))
	var err error
	peak, total := mediatest.HeapPeak(5, 100*time.Microsecond, func() { _, err = Process(bytes.NewReader(bomb), Limits{}) })
	if parley.ErrorCode(err) != parley.ETOOLARGE || !strings.Contains(parley.ErrorMessage(err), "MiB budget") {
		t.Fatalf("Process(bomb) = %v, want too_large over the budget", err)
	}
	t.Logf("refused: %s", parley.ErrorMessage(err))
	t.Logf("refusing: peak heap %d KiB, allocated %d KiB", peak>>10, total>>10)
	if total > 32<<20 { // the body read whole, not the 320 MiB canvas
		t.Errorf("refusing allocated %d bytes; the bomb was decoded", total)
	}
	// With a budget that fits it, the same image is decoded: the budget is
	// what refused it.
	var lim Limits
	if testing.Short() {
		return
	}
	lim.DecodeBudget = 1 << 30
	if _, err := Inspect(bytes.NewReader(bomb), lim); err != nil {
		t.Fatalf("Inspect with a 1 GiB budget: %v", err)
	}
}

// TestGIFFirstFrameOnly: a many-frame GIF and a GIF padded with comments
// are stored as their first frame, re-encoded: no later frame, no comment.
func TestGIFFirstFrameOnly(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"3000 frames on 6292x6292", mediatest.GIF(3000, 6292, 6292, 0)},
		{"1x1 with 9.9 MB of comments", mediatest.GIF(1, 1, 1, 9_900_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Process(bytes.NewReader(tt.data), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			g, err := gif.DecodeAll(bytes.NewReader(img.Data))
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Image) != 1 || len(img.Data) > 1024 || bytes.Contains(img.Data, []byte("xxxx")) {
				t.Errorf("stored %d frames in %d bytes (uploaded %d), want one small frame", len(g.Image), len(img.Data), len(tt.data))
			}
			t.Logf("uploaded %d bytes, stored %d bytes, %d frame, %dx%d", len(tt.data), len(img.Data), len(g.Image), img.Width, img.Height)
		})
	}
}
