package smart

import "crypto/rand"

// cryptoRand is crypto/rand as an io.Reader value for Config.Rand.
type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return rand.Read(p) }
