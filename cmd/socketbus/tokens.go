package main

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/socketbus/socketbus"
)

// errBadToken is what Authenticate returns for a join it refuses.
var errBadToken = errors.New("token not allowed on the channel")

// tokenTable holds, per channel, the tokens allowed to join it, as read
// from serve's --tokens file.
type tokenTable struct {
	tokens map[socketbus.ID][][]byte
	names  map[socketbus.ID]string // channel names, for logs and /status
}

// loadTokens reads a tokens file: one "channel-name token" pair per line,
// blank lines and lines starting with # ignored. A channel may appear on
// several lines, one per token it accepts.
func loadTokens(path string) (*tokenTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--tokens: %w", err)
	}
	defer f.Close()
	t, err := parseTokens(f)
	if err != nil {
		return nil, usagef("--tokens %s: %w", path, err)
	}
	return t, nil
}

// parseTokens parses the tokens file format from r.
func parseTokens(r io.Reader) (*tokenTable, error) {
	t := &tokenTable{tokens: make(map[socketbus.ID][][]byte), names: make(map[socketbus.ID]string)}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"channel-name token\", got %d fields", line, len(fields))
		}
		id := socketbus.ChannelFromName(fields[0])
		t.names[id] = fields[0]
		t.tokens[id] = append(t.tokens[id], []byte(fields[1]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	return t, nil
}

// authenticate is a server.Config.Authenticate: it admits a join when the
// token is one of the channel's. Every allowed token is compared, in
// constant time, so the time taken says nothing about which came close.
func (t *tokenTable) authenticate(_, channel socketbus.ID, token string) error {
	ok := 0
	for _, allowed := range t.tokens[channel] {
		ok |= subtle.ConstantTimeCompare(allowed, []byte(token))
	}
	if ok != 1 {
		return errBadToken
	}
	return nil
}

// name returns the channel's name if the table knows it.
func (t *tokenTable) name(channel socketbus.ID) string {
	if t == nil {
		return ""
	}
	return t.names[channel]
}
