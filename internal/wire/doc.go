// Package wire is the socketbus v1 frame codec: the 68-byte header, the frame
// types and flags, and the small payloads that control frames carry.
//
// The codec is pure. It starts no goroutines and does no I/O: AppendHeader
// appends a header to a byte slice and ParseHeader reads one from a byte slice.
// docs/PROTOCOL.md at the repository root is the prose reference for every
// value defined here.
package wire
