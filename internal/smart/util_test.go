package smart

import (
	"encoding/base64"
	"strconv"
)

func b64(s string) string    { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
func jsonNum(n int64) string { return strconv.FormatInt(n, 10) }
