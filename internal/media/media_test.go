package media

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media/mediatest"
)

func testImage(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	return img
}

// encode returns img in format.
func encode(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngBytes(t testing.TB, w, h int) []byte {
	return encode(t, "png", testImage(w, h))
}

// jpegWithEXIF returns a JPEG with an APP1 EXIF segment holding a marker
// string right after the SOI marker, as a phone camera would write it.
func jpegWithEXIF(t testing.TB, marker string) []byte {
	b := encode(t, "jpeg", testImage(640, 480))
	payload := append([]byte("Exif\x00\x00"), marker...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	seg = append(seg, payload...)
	return append(append(append([]byte{}, b[:2]...), seg...), b[2:]...)
}

// pngClaiming returns a valid small PNG whose IHDR claims w x h, with the
// chunk CRC fixed so only the size check can refuse it.
func pngClaiming(t testing.TB, w, h uint32) []byte {
	b := pngBytes(t, 4, 4)
	// 8-byte signature, 4-byte length, "IHDR", then width and height.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	crc := crc32.ChecksumIEEE(b[12:29])
	binary.BigEndian.PutUint32(b[29:], crc)
	return b
}

func gifBytes(t testing.TB) []byte {
	return encode(t, "gif", image.NewPaletted(image.Rect(0, 0, 500, 100), color.Palette{color.Black, color.White}))
}

// A 1x1 lossless WebP (the one browsers' feature tests use).
const webp1x1 = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="

func TestProcessAccepts(t *testing.T) {
	webp, _ := base64.StdEncoding.DecodeString(webp1x1)
	tests := []struct {
		name      string
		data      []byte
		ct, thumb string
		w, h      int
		tw, th    int
	}{
		{"png landscape", pngBytes(t, 800, 600), "image/png", "image/png", 800, 600, 320, 240},
		{"png small stays", pngBytes(t, 10, 20), "image/png", "image/png", 10, 20, 10, 20},
		{"jpeg", jpegWithEXIF(t, "GPS 51.5N"), "image/jpeg", "image/jpeg", 640, 480, 320, 240},
		{"gif", gifBytes(t), "image/gif", "image/png", 500, 100, 320, 64},
		{"webp", webp, "image/webp", "image/jpeg", 1, 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Process(bytes.NewReader(tt.data), Limits{})
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if img.ContentType != tt.ct || img.ThumbContentType != tt.thumb || img.Width != tt.w || img.Height != tt.h {
				t.Fatalf("got %s %dx%d thumb %s, want %s %dx%d thumb %s", img.ContentType, img.Width, img.Height, img.ThumbContentType, tt.ct, tt.w, tt.h, tt.thumb)
			}
			cfg, _, err := image.DecodeConfig(bytes.NewReader(img.Thumb))
			if err != nil {
				t.Fatalf("thumbnail does not decode: %v", err)
			}
			if cfg.Width != tt.tw || cfg.Height != tt.th {
				t.Fatalf("thumbnail is %dx%d, want %dx%d", cfg.Width, cfg.Height, tt.tw, tt.th)
			}
		})
	}
}

func TestProcessStripsEXIF(t *testing.T) {
	const marker = "GPS 51.5074N 0.1278W"
	in := jpegWithEXIF(t, marker)
	if !bytes.Contains(in, []byte(marker)) {
		t.Fatal("test input lacks its EXIF marker")
	}
	img, err := Process(bytes.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"data": img.Data, "thumb": img.Thumb} {
		if bytes.Contains(b, []byte(marker)) || bytes.Contains(b, []byte("Exif")) {
			t.Errorf("%s still holds EXIF", name)
		}
	}
}

func TestProcessRefuses(t *testing.T) {
	full := pngBytes(t, 64, 64)
	tests := []struct {
		name string
		data []byte
		lim  Limits
		code string
	}{
		{"text named png", []byte("hello, this is not an image at all\n"), Limits{}, parley.EUNSUPPORTED},
		{"html", []byte("<!doctype html><html><script>alert(1)</script></html>"), Limits{}, parley.EUNSUPPORTED},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), Limits{}, parley.EUNSUPPORTED},
		{"empty", nil, Limits{}, parley.EINVALID},
		{"truncated png", full[:len(full)/2], Limits{}, parley.EINVALID},
		{"png header only", full[:40], Limits{}, parley.EINVALID},
		{"bomb 20000x20000", pngClaiming(t, 20000, 20000), Limits{}, parley.ETOOLARGE},
		{"over pixel limit", pngBytes(t, 100, 100), Limits{MaxPixels: 9999}, parley.ETOOLARGE},
		{"oversized body", full, Limits{MaxBytes: int64(len(full)) - 1}, parley.ETOOLARGE},
		{"over the decode budget", pngBytes(t, 800, 600), Limits{DecodeBudget: 4 << 20}, parley.ETOOLARGE},
		{"16-bit bomb", mediatest.PNG16(2000, 2000), Limits{DecodeBudget: 32 << 20}, parley.ETOOLARGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Process(bytes.NewReader(tt.data), tt.lim)
			if got := parley.ErrorCode(err); got != tt.code {
				t.Fatalf("Process: code %q (%v), want %q", got, err, tt.code)
			}
			if strings.Contains(parley.ErrorMessage(err), "runtime") {
				t.Fatalf("error leaks internals: %v", err)
			}
		})
	}
}

// FuzzProcess feeds arbitrary bytes, seeded with every case above: Process
// must never panic, and must either refuse with a code or return an image
// whose thumbnail fits the limit.
func FuzzProcess(f *testing.F) {
	full := pngBytes(f, 64, 64)
	webp, _ := base64.StdEncoding.DecodeString(webp1x1)
	seeds := [][]byte{full, full[:len(full)/2], pngClaiming(f, 20000, 20000), jpegWithEXIF(f, "x"), gifBytes(f), webp, []byte("text"),
		mediatest.PNG16(1000, 1000), mediatest.GIF(300, 1000, 1000, 0), mediatest.GIF(2, 4, 4, 3000)}
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Process(bytes.NewReader(data), Limits{MaxPixels: 1 << 20, DecodeBudget: 16 << 20})
		if err != nil {
			if parley.ErrorCode(err) == parley.EINTERNAL {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(img.Thumb))
		if err != nil || cfg.Width > DefaultThumbSize || cfg.Height > DefaultThumbSize {
			t.Fatalf("bad thumbnail: %v %dx%d", err, cfg.Width, cfg.Height)
		}
	})
}
