// Package reqctx carries per-request values through a context: the request
// id that ties a response, its log lines and its audit record together, and
// the logger that already carries that id.
package reqctx
