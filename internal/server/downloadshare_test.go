package server_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestDownloadShareOneAlways: a user with no download under way may
// download any attachment, however its size compares with their share
// of the node's download room (UploadLimits.DownloadBytes). The share
// was at least one file of MaxFileBytes, but a file stored while the
// limit was higher (here 6 MiB, stored under 25 MiB, served under 1 MiB
// with a 16 MiB room: a share of 4 MiB), or an image (up to MaxBytes,
// 10 MiB, above a lowered MaxFileBytes), could be larger: each download
// of it was refused 503 "too many of your downloads", for good, with
// none under way. (A download now holds a chunk of its file, not the
// file: server.DownloadHold, never more than the share.)
func TestDownloadShareOneAlways(t *testing.T) {
	maxFile := int64(25 << 20)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.MaxFileBytes = maxFile
		c.Uploads.DownloadBytes = 16 << 20
	}))
	data := make([]byte, 6<<20)
	for i := range data {
		data[i] = byte(i * 131 >> 3)
	}
	tok := srv.Token(t, "alice", "Alice")
	a := uploadFile(t, srv, tok, "big.bin", data)

	maxFile = 1 << 20 // the operator lowers --upload-max-file-mib
	srv.Restart(t)
	for range 2 {
		r := rawDo(t, "GET", srv.URL+"/v1/attachments/"+a.ID, tok, "", nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, data) {
			t.Fatalf("download of a 6 MiB file, none other under way, share 4 MiB: %d %q; want 200 and the file", r.status, r.body[:min(len(r.body), 200)])
		}
	}
}
