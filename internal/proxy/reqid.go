package proxy

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
)

// requestIDs generates x-request-id values for requests that arrive without one: UUIDs
// (version 4 layout) made of a random per-proxy prefix and a counter, so generating one
// costs an atomic add and a hex encoding, and two proxies never collide in practice.
type requestIDs struct {
	prefix [8]byte
	seq    atomic.Uint64
}

func (g *requestIDs) init() {
	rand.Read(g.prefix[:])
	g.prefix[6] = g.prefix[6]&0x0f | 0x40 // version 4
}

func (g *requestIDs) next() string {
	var out [36]byte
	return string(g.appendNext(out[:0]))
}

// appendNext appends a new ID to dst, for front ends that write it straight into a
// request head.
func (g *requestIDs) appendNext(dst []byte) []byte {
	var b [16]byte
	copy(b[:8], g.prefix[:])
	binary.BigEndian.PutUint64(b[8:], g.seq.Add(1))
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant; the counter never reaches these bits
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return append(dst, out[:]...)
}
