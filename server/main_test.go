package server_test

import (
	"testing"

	"github.com/socketbus/socketbus/internal/frame/frametest"
)

func TestMain(m *testing.M) {
	frametest.Main(m)
}
