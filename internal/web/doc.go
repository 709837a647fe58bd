// Package web renders the server's HTML pages from embedded html/template
// files and holds what every page needs: security headers against framing
// and caching, session cookies, and CSRF tokens compared in constant time.
package web
