package reqctx

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggerCarriesRequestID(t *testing.T) {
	var buf bytes.Buffer
	ctx := With(context.Background(), "req-42", slog.New(slog.NewTextHandler(&buf, nil)))
	if got := RequestID(ctx); got != "req-42" {
		t.Errorf("RequestID = %q, want req-42", got)
	}
	Logger(ctx).Info("hello")
	Logger(ctx).Info("again")
	if n := strings.Count(buf.String(), "request_id=req-42"); n != 2 {
		t.Errorf("log = %q, want request_id on both lines", buf.String())
	}
	if RequestID(context.Background()) != "" || Logger(context.Background()) != slog.Default() {
		t.Error("outside a request: want no id and the default logger")
	}
}
