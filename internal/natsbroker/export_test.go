package natsbroker

// Decoded reports how many messages b's subscriptions decoded from their
// bytes (not taken from the messages b kept for their echo).
func Decoded(b *Broker) int64 { return b.decoded.Load() }

// Echoes is echoes for tests.
type Echoes = echoes

// Keep, Take and Len expose echoes' methods.
var (
	Keep         = (*echoes).keep
	Take         = (*echoes).take
	Len          = (*echoes).len
	EchoSeq      = echoSeq
	MaxEchoBytes = maxEchoBytes
)
