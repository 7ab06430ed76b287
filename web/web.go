// Package web is Parley's browser client: ES modules, HTML and CSS with no
// build step, embedded in the binary and served by the server at "/".
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// FS returns the client's files, rooted at the directory served as "/".
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}

// Handler serves the client.
func Handler() http.Handler { return http.FileServerFS(FS()) }
