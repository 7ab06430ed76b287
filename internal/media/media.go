// Package media checks uploaded images and makes their thumbnails.
//
// The type of a file is decided by its content (http.DetectContentType),
// never by its name. Dimensions and color model are read with
// image.DecodeConfig before anything is decoded, and an upload whose
// processing would need more memory than Limits.DecodeBudget is refused
// then (see Cost), so a small file that claims a huge canvas (a
// decompression bomb) is refused without allocating the canvas.
//
// A GIF is kept as its first frame only: image/gif can count frames only
// by decoding all of them (gif.DecodeAll keeps every frame), which no
// budget fixed before decoding can bound, since a 10 MiB file can hold
// thousands of full-canvas frames. gif.Decode stops after the first frame,
// so a GIF costs at most one canvas of one byte per pixel, and recipients
// are never handed an animation bomb either.
package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers the WebP decoder with package image

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/defaults"
)

// Defaults for Limits.
const (
	DefaultMaxBytes     = 10 << 20
	DefaultMaxPixels    = 40_000_000
	DefaultThumbSize    = 320
	DefaultDecodeBudget = 64 << 20
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
	// DecodeBudget bounds the memory one upload's processing may hold:
	// the decoded image with its decoder's working buffers, the thumbnail
	// and the re-encoded output (default 64 MiB). An upload whose Cost is
	// over it is refused before decoding; a re-encoded output that would
	// not fit in what Cost leaves of it is refused too. The uploaded bytes
	// themselves (at most MaxBytes) are not counted.
	DecodeBudget int64
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	defaults.Positive(&l.MaxBytes, DefaultMaxBytes)
	defaults.Positive(&l.MaxPixels, DefaultMaxPixels)
	defaults.Positive(&l.ThumbSize, DefaultThumbSize)
	defaults.Positive(&l.DecodeBudget, DefaultDecodeBudget)
	return l
}

// Image is a checked upload, ready to store.
type Image struct {
	// ContentType is image/png, image/jpeg, image/gif or image/webp.
	ContentType   string
	Width, Height int
	// Data is what is stored and served. JPEG and PNG are re-encoded,
	// which drops EXIF and other metadata (location, camera); a GIF is
	// re-encoded as its first frame (dropping any later frames, comments
	// and other extension blocks); WebP (which Go cannot encode) is kept
	// as uploaded.
	Data []byte
	// Thumb fits in ThumbSize x ThumbSize, re-encoded (so without metadata):
	// PNG for PNG and GIF sources (keeping transparency), JPEG otherwise.
	Thumb            []byte
	ThumbContentType string
}

var allowed = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// Upload is an upload that Inspect has read and checked but not decoded.
type Upload struct {
	data   []byte
	ct     string
	cfg    image.Config
	cost   int64
	lim    Limits
	format string
}

// Size is the number of bytes uploaded.
func (u *Upload) Size() int64 { return int64(len(u.data)) }

// Cost is the memory Decode will hold at most, by Cost.
func (u *Upload) Cost() int64 { return u.cost }

// Process is Inspect followed by Decode.
func Process(r io.Reader, lim Limits) (Image, error) {
	u, err := Inspect(r, lim)
	if err != nil {
		return Image{}, err
	}
	return u.Decode()
}

// Inspect reads an upload from r and checks it without decoding it: at
// most MaxBytes, an allowed type by content, a readable header, at most
// MaxPixels and a Cost within DecodeBudget. Errors are *parley.Error:
// ETOOLARGE for size, canvas and budget, EUNSUPPORTED for a type that is
// not an allowed image, EINVALID for a corrupt header.
func Inspect(r io.Reader, lim Limits) (*Upload, error) {
	lim = lim.WithDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, parley.Errorf(parley.ETOOLARGE, "upload is larger than %d bytes", lim.MaxBytes)
		}
		return nil, parley.Errorf(parley.EINVALID, "upload could not be read: %v", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, parley.Errorf(parley.ETOOLARGE, "upload is larger than %d bytes", lim.MaxBytes)
	}
	if len(data) == 0 {
		return nil, parley.Errorf(parley.EINVALID, "upload is empty")
	}
	ct := http.DetectContentType(data)
	if !allowed[ct] {
		return nil, parley.Errorf(parley.EUNSUPPORTED, "file is %s, not a PNG, JPEG, GIF or WebP image", ct)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, parley.Errorf(parley.EINVALID, "image header is corrupt")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, parley.Errorf(parley.EINVALID, "image has no pixels")
	}
	if int64(cfg.Width)*int64(cfg.Height) > lim.MaxPixels {
		return nil, parley.Errorf(parley.ETOOLARGE, "image is %dx%d, over the %d-pixel limit", cfg.Width, cfg.Height, lim.MaxPixels)
	}
	if "image/"+format != ct {
		return nil, parley.Errorf(parley.EINVALID, "image content does not match its %s header", ct)
	}
	cost := Cost(format, cfg, lim.ThumbSize) + int64(outputReserve(ct, len(data)))
	if cost > lim.DecodeBudget {
		return nil, parley.Errorf(parley.ETOOLARGE, "a %dx%d %s image needs about %d MiB to decode, over the %d MiB budget for one upload",
			cfg.Width, cfg.Height, format, mib(cost), mib(lim.DecodeBudget))
	}
	return &Upload{data: data, ct: ct, cfg: cfg, cost: cost, lim: lim, format: format}, nil
}

func mib(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// Decode decodes the upload, makes its thumbnail and re-encodes it. It
// holds at most DecodeBudget bytes besides the upload's own. Errors are
// *parley.Error: EINVALID for a corrupt or truncated image, ETOOLARGE
// when the re-encoded image does not fit in the budget.
func (u *Upload) Decode() (Image, error) {
	var (
		img image.Image
		err error
	)
	if u.ct == "image/gif" {
		img, err = gif.Decode(bytes.NewReader(u.data)) // the first frame only
	} else {
		img, _, err = image.Decode(bytes.NewReader(u.data))
	}
	if err != nil {
		return Image{}, parley.Errorf(parley.EINVALID, "image is corrupt or truncated")
	}
	out := Image{ContentType: u.ct, Width: u.cfg.Width, Height: u.cfg.Height, Data: u.data}
	room := outputReserve(u.ct, len(u.data))
	switch u.ct {
	case "image/jpeg":
		out.Data, err = encodeJPEG(img, 90, room)
	case "image/png":
		out.Data, err = encodePNG(img, room)
	case "image/gif":
		frame, ok := img.(*image.Paletted)
		if !ok {
			return Image{}, fmt.Errorf("media: gif.Decode returned a %T", img)
		}
		out.Data, err = encodeGIF(frame, u.cfg, room)
	}
	if err != nil {
		return Image{}, err
	}
	thumb := Thumbnail(img, u.lim.ThumbSize)
	img = nil // the canvas is garbage from here: let a GC reclaim it
	troom := thumbOutput(thumb.Bounds().Dx(), thumb.Bounds().Dy())
	if u.ct == "image/png" || u.ct == "image/gif" {
		out.Thumb, err = encodePNG(thumb, troom)
		out.ThumbContentType = "image/png"
	} else {
		out.Thumb, err = encodeJPEG(thumb, 80, troom)
		out.ThumbContentType = "image/jpeg"
	}
	if err != nil {
		return Image{}, err
	}
	return out, nil
}

// Thumbnail scales img to fit in size x size, keeping its aspect ratio.
// An image over twice that size is first brought to at most twice it
// with draw.ApproxBiLinear, which needs no scratch memory; the last step
// is Catmull-Rom, whose scratch (32 bytes per destination column and
// source row) then stays small whatever the source. An image that already
// fits is copied as is.
func Thumbnail(img image.Image, size int) image.Image {
	b := img.Bounds()
	src, sb := img, b
	if b.Dx() > 2*size || b.Dy() > 2*size {
		w, h := fit(b.Dx(), b.Dy(), 2*size)
		mid := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.ApproxBiLinear.Scale(mid, mid.Bounds(), img, b, draw.Src, nil)
		src, sb = mid, mid.Bounds()
	}
	w, h := fit(b.Dx(), b.Dy(), size)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, sb, draw.Src, nil)
	return dst
}

// fit returns w x h scaled to fit in size x size, keeping the aspect
// ratio; a w x h that fits is returned as is.
func fit(w, h, size int) (int, int) {
	if w <= size && h <= size {
		return w, h
	}
	if w >= h {
		return size, max(1, int(int64(h)*int64(size)/int64(w)))
	}
	return max(1, int(int64(w)*int64(size)/int64(h))), size
}

// Cost estimates the most memory Decode holds for an image of cfg's size
// and color model in format ("png", "jpeg", "gif" or "webp"), with
// thumbnails of thumbSize. It is the sum of:
//
//   - the decoded canvas: width x height x bytes per pixel of the color
//     model DecodeConfig reports (gray and paletted 1, 16-bit gray 2,
//     YCbCr 3 (4:4:4, the worst sampling), RGBA and CMYK 4, 16-bit RGBA 8);
//   - the decoder's working memory: PNG half a canvas (an interlaced
//     image's largest pass) and two rows; JPEG the coefficients a
//     progressive image keeps, 4 bytes per sample of each component, and
//     for CMYK the intermediate planes (4 bytes per pixel); WebP 8 bytes
//     per pixel (the lossless decoder's pixel buffers); GIF nothing,
//     since only the first frame, at most the canvas, is decoded;
//   - the thumbnail (see Thumbnail and thumbCost) and the encoders'
//     fixed state (encoderState) and row buffers.
//
// Inspect adds the buffer for the re-encoded image (outputReserve). The
// estimate counts live memory: Go's collector may let the heap grow past
// it before it reclaims garbage (GOGC, GOMEMLIMIT).
func Cost(format string, cfg image.Config, thumbSize int) int64 {
	w, h := int64(cfg.Width), int64(cfg.Height)
	px := w * h
	bpp, comps := pixelBytes(cfg.ColorModel)
	canvas := px * bpp
	var work int64
	switch format {
	case "png":
		work = canvas/2 + 2*(w*bpp+1)
	case "jpeg":
		work = px * 4 * comps
		if cfg.ColorModel == color.CMYKModel {
			work += px * 4
		}
	case "webp":
		work = px * 8
	}
	return canvas + work + thumbCost(cfg.Width, cfg.Height, thumbSize) + encoderState + 2*(8*w+1)*6
}

// pixelBytes returns the bytes per pixel of an image decoded in model m,
// and its number of JPEG components. An unknown model counts as 16-bit
// RGBA, the largest.
func pixelBytes(m color.Model) (bpp, comps int64) {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1, 1
	case color.Gray16Model, color.Alpha16Model:
		return 2, 1
	case color.YCbCrModel:
		return 3, 3
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4, 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8, 4
	}
	if _, ok := m.(color.Palette); ok {
		return 1, 1
	}
	return 8, 4
}

// encoderState covers the fixed allocations of the decoders and encoders
// (zlib and flate state, LZW tables, Huffman tables, bufio buffers).
const encoderState = 2 << 20

// outputReserve is the buffer a re-encoded image of an n-byte upload of
// type ct is written into, allocated whole so it never grows (a growing
// buffer holds its old and new arrays at once): twice the upload and
// 1 MiB, which re-encoding a real image does not outgrow. WebP is kept as
// uploaded and needs none.
func outputReserve(ct string, n int) int {
	if ct == "image/webp" {
		return 0
	}
	return 2*n + 1<<20
}

// thumbCost is the memory Thumbnail and the thumbnail's encoding hold for
// a w x h source: the intermediate RGBA (when the source is over twice the
// size), Catmull-Rom's scratch ([4]float64 per destination column and
// source row), the thumbnail and its encoded output.
func thumbCost(w, h, size int) int64 {
	var c int64
	sh := h
	if w > 2*size || h > 2*size {
		mw, mh := fit(w, h, 2*size)
		c += int64(mw) * int64(mh) * 4
		sh = mh
	}
	tw, th := fit(w, h, size)
	return c + int64(tw)*int64(sh)*32 + int64(tw)*int64(th)*4 + int64(thumbOutput(tw, th))
}

// thumbOutput bounds a thumbnail's encoding: twice its raw pixels (no
// encoder here expands RGBA more than that) and a little.
func thumbOutput(w, h int) int { return 2*w*h*4 + 64<<10 }

// cappedBuffer is an io.Writer into a buffer allocated whole, max bytes:
// an encoding that would outgrow it fails with errOverBudget, so it stays
// within the memory it was given.
type cappedBuffer struct {
	buf []byte
}

func newCapped(max int) *cappedBuffer { return &cappedBuffer{buf: make([]byte, 0, max)} }

var errOverBudget = errors.New("media: output over budget")

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if len(p) > cap(b.buf)-len(b.buf) {
		return 0, errOverBudget
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func encoded(b *cappedBuffer, err error, what string) ([]byte, error) {
	if errors.Is(err, errOverBudget) {
		return nil, parley.Errorf(parley.ETOOLARGE, "the image re-encodes larger than its memory budget allows")
	}
	if err != nil {
		return nil, fmt.Errorf("media: encode %s: %w", what, err)
	}
	return b.buf, nil
}

func encodeJPEG(img image.Image, quality, max int) ([]byte, error) {
	b := newCapped(max)
	err := jpeg.Encode(b, img, &jpeg.Options{Quality: quality})
	return encoded(b, err, "jpeg")
}

func encodePNG(img image.Image, max int) ([]byte, error) {
	b := newCapped(max)
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	return encoded(b, enc.Encode(b, img), "png")
}

// encodeGIF writes frame as a one-frame GIF on the original canvas, with
// the frame's own palette, so nothing but the first frame's pixels is kept.
func encodeGIF(frame *image.Paletted, cfg image.Config, max int) ([]byte, error) {
	b := newCapped(max)
	err := gif.EncodeAll(b, &gif.GIF{
		Image:  []*image.Paletted{frame},
		Delay:  []int{0},
		Config: image.Config{Width: cfg.Width, Height: cfg.Height},
	})
	return encoded(b, err, "gif")
}
