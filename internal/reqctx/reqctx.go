package reqctx

import (
	"context"
	"log/slog"
	"sync"
)

type key struct{}

// request is what a request's context carries. The logger with the request
// id is built on first use: most requests log nothing, and building one
// costs an allocation on the hot path of every read.
type request struct {
	id     string
	base   *slog.Logger
	once   sync.Once
	logger *slog.Logger
}

// With returns ctx carrying the request id and, for Logger, the logger to
// which the id is added on every line.
func With(ctx context.Context, requestID string, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, &request{id: requestID, base: logger})
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	if r, ok := ctx.Value(key{}).(*request); ok {
		return r.id
	}
	return ""
}

// Logger returns the request's logger, which adds request_id to every
// line, or slog.Default outside a request.
func Logger(ctx context.Context) *slog.Logger {
	r, ok := ctx.Value(key{}).(*request)
	if !ok {
		return slog.Default()
	}
	r.once.Do(func() { r.logger = r.base.With("request_id", r.id) })
	return r.logger
}
