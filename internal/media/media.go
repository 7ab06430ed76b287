// Package media checks uploaded images and makes their thumbnails.
//
// The type of a file is decided by its content (http.DetectContentType),
// never by its name. Dimensions are read with image.DecodeConfig before
// anything is decoded, so a small file that claims a huge canvas (a
// decompression bomb) is refused without allocating the canvas.
package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registers the GIF decoder with package image
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers the WebP decoder with package image

	"github.com/parleychat/parley"
)

// Defaults for Limits.
const (
	DefaultMaxBytes  = 10 << 20
	DefaultMaxPixels = 40_000_000
	DefaultThumbSize = 320
)

// Limits bound what Process accepts. Zero fields take the defaults.
type Limits struct {
	// MaxBytes is the largest upload (default 10 MiB).
	MaxBytes int64
	// MaxPixels is the largest canvas, width times height (default 40
	// megapixels).
	MaxPixels int64
	// ThumbSize is the longest side of a thumbnail (default 320).
	ThumbSize int
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.ThumbSize <= 0 {
		l.ThumbSize = DefaultThumbSize
	}
	return l
}

// Image is a checked upload, ready to store.
type Image struct {
	// ContentType is image/png, image/jpeg, image/gif or image/webp.
	ContentType   string
	Width, Height int
	// Data is what is stored and served. JPEG and PNG are re-encoded, which
	// drops EXIF and other metadata (location, camera); GIF (which may be
	// animated) and WebP (which Go cannot encode) are kept as uploaded.
	Data []byte
	// Thumb fits in ThumbSize x ThumbSize, re-encoded (so without metadata):
	// PNG for PNG and GIF sources (keeping transparency), JPEG otherwise.
	Thumb            []byte
	ThumbContentType string
}

var allowed = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// Process reads an upload from r and checks it: at most MaxBytes, an
// allowed type by content, at most MaxPixels, and decodable to the end.
// Errors are *parley.Error: ETOOLARGE for size and canvas, EUNSUPPORTED for
// a type that is not an allowed image, EINVALID for a corrupt or truncated
// image.
func Process(r io.Reader, lim Limits) (Image, error) {
	lim = lim.WithDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Image{}, parley.Errorf(parley.ETOOLARGE, "upload is larger than %d bytes", lim.MaxBytes)
		}
		return Image{}, parley.Errorf(parley.EINVALID, "upload could not be read: %v", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return Image{}, parley.Errorf(parley.ETOOLARGE, "upload is larger than %d bytes", lim.MaxBytes)
	}
	if len(data) == 0 {
		return Image{}, parley.Errorf(parley.EINVALID, "upload is empty")
	}
	ct := http.DetectContentType(data)
	if !allowed[ct] {
		return Image{}, parley.Errorf(parley.EUNSUPPORTED, "file is %s, not a PNG, JPEG, GIF or WebP image", ct)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return Image{}, parley.Errorf(parley.EINVALID, "image header is corrupt")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Image{}, parley.Errorf(parley.EINVALID, "image has no pixels")
	}
	if int64(cfg.Width)*int64(cfg.Height) > lim.MaxPixels {
		return Image{}, parley.Errorf(parley.ETOOLARGE, "image is %dx%d, over the %d-pixel limit", cfg.Width, cfg.Height, lim.MaxPixels)
	}
	if "image/"+format != ct {
		return Image{}, parley.Errorf(parley.EINVALID, "image content does not match its %s header", ct)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return Image{}, parley.Errorf(parley.EINVALID, "image is corrupt or truncated")
	}
	out := Image{ContentType: ct, Width: cfg.Width, Height: cfg.Height, Data: data}
	switch ct {
	case "image/jpeg":
		if out.Data, err = encodeJPEG(img, 90); err != nil {
			return Image{}, err
		}
	case "image/png":
		if out.Data, err = encodePNG(img); err != nil {
			return Image{}, err
		}
	}
	thumb := Thumbnail(img, lim.ThumbSize)
	if ct == "image/png" || ct == "image/gif" {
		out.Thumb, err = encodePNG(thumb)
		out.ThumbContentType = "image/png"
	} else {
		out.Thumb, err = encodeJPEG(thumb, 80)
		out.ThumbContentType = "image/jpeg"
	}
	if err != nil {
		return Image{}, err
	}
	return out, nil
}

// Thumbnail scales img to fit in size x size, keeping its aspect ratio,
// with Catmull-Rom resampling. An image that already fits is copied as is.
func Thumbnail(img image.Image, size int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w > size || h > size {
		if w >= h {
			w, h = size, max(1, h*size/b.Dx())
		} else {
			w, h = max(1, w*size/b.Dy()), size
		}
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

func encodeJPEG(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("media: encode jpeg: %w", err)
	}
	return buf.Bytes(), nil
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("media: encode png: %w", err)
	}
	return buf.Bytes(), nil
}
