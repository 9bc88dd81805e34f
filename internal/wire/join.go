package wire

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
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
	joinFieldClientKey   = 3 // the client's key, ClientKeySize random bytes (router/keys.go)
)

// ClientKeySize is the length of a client key.
const ClientKeySize = 16

// MaxChannelNameBytes bounds the channel name a client may give.
const MaxChannelNameBytes = 1024

// AppendJoinPayload appends the join payload for token, the channel's
// name and the client's key (nil for none) to b: the token alone when
// there is no name and no key, the fields otherwise.
func AppendJoinPayload(b []byte, token, channelName string, key []byte) []byte {
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

// ParseJoinPayload reads a join payload for channel: the token, the
// channel name and the client key it gives. A payload without the magic
// prefix is a token. A name that is not channel's, not UTF-8 or too long,
// a key that is not ClientKeySize bytes, or a truncated field, is a
// protocol error.
func ParseJoinPayload(p []byte, channel ID) (token, channelName string, key []byte, err error) {
	rest, ok := bytes.CutPrefix(p, joinFieldsMagic)
	if !ok {
		return string(p), "", nil, nil
	}
	for len(rest) > 0 {
		if len(rest) < 3 {
			return "", "", nil, Errorf(CodeProtocol, "join payload: a field header of %d bytes; 3 needed", len(rest))
		}
		tag, n := rest[0], int(binary.BigEndian.Uint16(rest[1:3]))
		if len(rest) < 3+n {
			return "", "", nil, Errorf(CodeProtocol, "join payload: field %d of %d bytes, %d left", tag, n, len(rest)-3)
		}
		v := rest[3 : 3+n]
		rest = rest[3+n:]
		switch tag {
		case joinFieldToken:
			token = string(v)
		case joinFieldChannelName:
			if n > MaxChannelNameBytes || !utf8.Valid(v) {
				return "", "", nil, Errorf(CodeProtocol, "join payload: a channel name must be UTF-8 of at most %d bytes", MaxChannelNameBytes)
			}
			if ChannelFromName(string(v)) != channel {
				return "", "", nil, Errorf(CodeProtocol, "join payload: channel name %q is not the name of channel %s", v, channel)
			}
			channelName = string(v)
		case joinFieldClientKey:
			if n != ClientKeySize {
				return "", "", nil, Errorf(CodeProtocol, "join payload: a client key of %d bytes; it has %d", n, ClientKeySize)
			}
			key = bytes.Clone(v)
		}
	}
	return token, channelName, key, nil
}

// CheckChannelName checks that name, given with the client's
// WithChannelName, names channel.
func CheckChannelName(name string, channel ID) error {
	if len(name) > MaxChannelNameBytes || !utf8.ValidString(name) {
		return fmt.Errorf("socketbus: channel name: must be UTF-8 of at most %d bytes", MaxChannelNameBytes)
	}
	if ChannelFromName(name) != channel {
		return fmt.Errorf("socketbus: channel name %q is not the name of channel %s (ChannelFromName gives %s)", name, channel, ChannelFromName(name))
	}
	return nil
}

// channelNamespace is the UUID v5 namespace of channel names:
// 6ba7b811-9dad-11d1-80b4-00c04fd430c8 (the URL namespace) applied to
// "socketbus:channel" gives it. docs/PROTOCOL.md records its value.
var channelNamespace = uuidV5(ID{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}, "socketbus:channel")

// ChannelFromName returns the channel ID for a human-readable name: the
// UUID v5 of name in socketbus's channel namespace (RFC 9562 section 5.5).
func ChannelFromName(name string) ID { return uuidV5(channelNamespace, name) }

// uuidV5 is the name-based, SHA-1 UUID of name in namespace.
func uuidV5(namespace ID, name string) ID {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var id ID
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x50 // version 5
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}
