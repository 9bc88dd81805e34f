package socketbus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/socketbus/socketbus/internal/wire"
)

// The join payload (PROTOCOL.md §7) is the client's token as it is, or,
// when the client gives more than a token, a set of fields after the
// magic prefix joinFieldsMagic: each field a tag byte, a 2-byte big-endian
// length and that many bytes. A server that predates the fields takes the
// whole payload for a token, which a server without Authenticate ignores.
var joinFieldsMagic = []byte{0x00, 's', 'b', 'j'}

// Join payload field tags. A server skips tags it does not know.
const (
	joinFieldToken       = 1 // the token, as WithToken gives it
	joinFieldChannelName = 2 // the channel's name: ChannelFromName(name) is the channel ID
	joinFieldClientKey   = 3 // the client's key, clientKeySize random bytes (router/keys.go)
)

// clientKeySize is the length of a client key.
const clientKeySize = 16

// maxChannelNameBytes bounds the channel name a client may give.
const maxChannelNameBytes = 1024

// appendJoinPayload appends the join payload for token, the channel's
// name and the client's key (nil for none) to b: the token alone when
// there is no name and no key, the fields otherwise.
func appendJoinPayload(b []byte, token, channelName string, key []byte) []byte {
	if channelName == "" && key == nil {
		return append(b, token...)
	}
	b = append(b, joinFieldsMagic...)
	field := func(tag byte, v string) {
		b = append(b, tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	if token != "" {
		field(joinFieldToken, token)
	}
	if channelName != "" {
		field(joinFieldChannelName, channelName)
	}
	if key != nil {
		field(joinFieldClientKey, string(key))
	}
	return b
}

// parseJoinPayload reads a join payload for channel: the token, the
// channel name and the client key it gives. A payload without the magic
// prefix is a token. A name that is not channel's, not UTF-8 or too long,
// a key that is not clientKeySize bytes, or a truncated field, is a
// protocol error.
func parseJoinPayload(p []byte, channel ID) (token, channelName string, key []byte, err error) {
	rest, ok := bytes.CutPrefix(p, joinFieldsMagic)
	if !ok {
		return string(p), "", nil, nil
	}
	for len(rest) > 0 {
		if len(rest) < 3 {
			return "", "", nil, wire.Errorf(wire.CodeProtocol, "join payload: a field header of %d bytes; 3 needed", len(rest))
		}
		tag, n := rest[0], int(binary.BigEndian.Uint16(rest[1:3]))
		if len(rest) < 3+n {
			return "", "", nil, wire.Errorf(wire.CodeProtocol, "join payload: field %d of %d bytes, %d left", tag, n, len(rest)-3)
		}
		v := rest[3 : 3+n]
		rest = rest[3+n:]
		switch tag {
		case joinFieldToken:
			token = string(v)
		case joinFieldChannelName:
			if n > maxChannelNameBytes || !utf8.Valid(v) {
				return "", "", nil, wire.Errorf(wire.CodeProtocol, "join payload: a channel name must be UTF-8 of at most %d bytes", maxChannelNameBytes)
			}
			if ChannelFromName(string(v)) != channel {
				return "", "", nil, wire.Errorf(wire.CodeProtocol, "join payload: channel name %q is not the name of channel %s", v, channel)
			}
			channelName = string(v)
		case joinFieldClientKey:
			if n != clientKeySize {
				return "", "", nil, wire.Errorf(wire.CodeProtocol, "join payload: a client key of %d bytes; it has %d", n, clientKeySize)
			}
			key = bytes.Clone(v)
		}
	}
	return token, channelName, key, nil
}

// checkChannelName checks that name, given with WithChannelName, names
// channel.
func checkChannelName(name string, channel ID) error {
	if len(name) > maxChannelNameBytes || !utf8.ValidString(name) {
		return fmt.Errorf("socketbus: channel name: must be UTF-8 of at most %d bytes", maxChannelNameBytes)
	}
	if ChannelFromName(name) != channel {
		return fmt.Errorf("socketbus: channel name %q is not the name of channel %s (ChannelFromName gives %s)", name, channel, ChannelFromName(name))
	}
	return nil
}
