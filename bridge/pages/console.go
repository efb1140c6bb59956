//go:build !wsbridge_minimal

package pages

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
)

// consolePage is --devconsole's page: it connects to the path it was
// served at, with the same query, and shows what comes and goes.
//
//go:embed console.html
var consolePage []byte

// consoleCSP lets the page run its own script and style and nothing else:
// no other script, inline or loaded, no eval, no image, no form
// submission, no frame, and connections only to this server. Should
// something a program prints ever end up as markup, it still could not
// run.
var consoleCSP = "default-src 'none'; script-src " + inlineHash(consolePage, "<script>", "</script>") +
	"; style-src " + inlineHash(consolePage, "<style>", "</style>") +
	"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// inlineHash returns the CSP source ('sha256-...') that allows the one
// inline element of page between open and close.
func inlineHash(page []byte, open, close string) string {
	_, after, ok := bytes.Cut(page, []byte(open))
	body, _, ok2 := bytes.Cut(after, []byte(close))
	if !ok || !ok2 {
		panic("bridge: console.html has no " + open)
	}
	sum := sha256.Sum256(body)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// serveConsole answers with the console page.
func serveConsole(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(consolePage)
}
