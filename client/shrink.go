package client

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registers the GIF decoder with package image
	"image/jpeg"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers the WebP decoder with package image

	"github.com/parleychat/parley"
)

// ImageMaxSide is the longest side, in pixels, of the images the reference
// clients send: ShrinkImage's default, and what the web client shrinks
// photos to before upload.
const ImageMaxSide = 2048

// shrinkMaxPixels bounds the images ShrinkImage decodes (about 250 MiB
// as RGBA): a larger canvas is refused rather than decoded.
const shrinkMaxPixels = 64 << 20

// ShrinkJPEGQuality is the JPEG quality of the images ShrinkImage re-encodes.
const ShrinkJPEGQuality = 85

// ShrinkImage reads an image from r (at most MaxImageBytes) and returns it
// ready for SendImage: the bytes as they are when the image fits in
// maxSide pixels on its longest side and in maxSide x maxSide*3/4 pixels
// (a 4:3 photo at maxSide), else a copy scaled down to fit (Catmull-Rom),
// a PNG as PNG (it may be transparent) and anything else as a JPEG of
// quality ShrinkJPEGQuality (transparent pixels become white). maxSide <=
// 0 means ImageMaxSide.
//
// The server refuses, before decoding, an upload whose decode would need
// more than its memory budget (64 MiB by default): a color JPEG over about
// 3.6 megapixels, such as a 12 MP phone photo, is refused with too_large
// unless shrunk. A 2048 x 1536 JPEG fits the default budget.
//
// It decodes the whole image in this process (about 4 bytes per pixel;
// images over 64 megapixels are refused with too_large), and it ignores
// EXIF orientation: a photo whose camera stored it sideways stays
// sideways (the web client, decoding in the browser, turns it upright).
// Bytes it cannot decode (not PNG, JPEG, GIF or WebP) give an error with
// code unsupported.
func ShrinkImage(r io.Reader, maxSide int) ([]byte, error) {
	if maxSide <= 0 {
		maxSide = ImageMaxSide
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxImageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("client: reading the image: %w", err)
	}
	if len(data) > MaxImageBytes {
		return nil, parley.Errorf(parley.ETOOLARGE, "the image is over %d bytes", MaxImageBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, parley.Errorf(parley.EUNSUPPORTED, "not an image this client can read: %v", err)
	}
	w, h, ok := shrunkSize(cfg.Width, cfg.Height, maxSide)
	if !ok {
		return data, nil
	}
	if int64(cfg.Width)*int64(cfg.Height) > shrinkMaxPixels {
		return nil, parley.Errorf(parley.ETOOLARGE, "a %dx%d image is over %d pixels, too large to shrink here", cfg.Width, cfg.Height, shrinkMaxPixels)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, parley.Errorf(parley.EUNSUPPORTED, "the image does not decode: %v", err)
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	op := draw.Src
	if format != "png" {
		// JPEG has no alpha: draw over white, not black.
		draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
		op = draw.Over
	}
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), op, nil)
	var out bytes.Buffer
	if format == "png" {
		err = png.Encode(&out, dst)
	} else {
		err = jpeg.Encode(&out, dst, &jpeg.Options{Quality: ShrinkJPEGQuality})
	}
	if err != nil {
		return nil, fmt.Errorf("client: encoding the shrunk image: %w", err)
	}
	return out.Bytes(), nil
}

// shrunkSize returns the size a w x h image is scaled to so that it fits
// in maxSide on its longest side and in maxSide*maxSide*3/4 pixels, and
// whether that is smaller than w x h. The web client (parley.js,
// shrinkImage) computes the same.
func shrunkSize(w, h, maxSide int) (int, int, bool) {
	maxPixels := float64(maxSide) * float64(maxSide) * 3 / 4
	scale := min(1, float64(maxSide)/float64(max(w, h)), math.Sqrt(maxPixels/(float64(w)*float64(h))))
	if scale >= 1 {
		return w, h, false
	}
	return max(1, int(float64(w)*scale)), max(1, int(float64(h)*scale)), true
}
