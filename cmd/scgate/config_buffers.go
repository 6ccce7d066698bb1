package main

import (
	"fmt"

	"github.com/scgate/scgate/proxy"
)

// validateBuffers applies the default of server.max_buffered_bytes (the
// proxy's buffer budget) and checks it against the replay buffer it must be
// able to hold.
func (c *Config) validateBuffers() []error {
	s := &c.Server
	if s.MaxBufferedBytes == 0 {
		s.MaxBufferedBytes = proxy.DefaultBufferBudget
	}
	replay := c.Rotation.replayBodyBytes()
	switch {
	case s.MaxBufferedBytes < 0:
		return []error{c.problem("must be positive, like 33554432 (32 MiB)", "server", "max_buffered_bytes")}
	case replay > 0 && s.MaxBufferedBytes < replay+1:
		return []error{c.problem(fmt.Sprintf("must be larger than rotation.replay_body_bytes (%d), or no request body could ever be kept for a retry", replay),
			"server", "max_buffered_bytes")}
	}
	return nil
}
