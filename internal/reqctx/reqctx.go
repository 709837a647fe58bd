package reqctx

import (
	"context"
	"log/slog"
)

type key int

const (
	requestIDKey key = iota
	loggerKey
)

// With returns ctx carrying the request id and a logger that adds it to
// every line.
func With(ctx context.Context, requestID string, logger *slog.Logger) context.Context {
	ctx = context.WithValue(ctx, requestIDKey, requestID)
	return context.WithValue(ctx, loggerKey, logger.With("request_id", requestID))
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Logger returns the request's logger, or slog.Default outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
