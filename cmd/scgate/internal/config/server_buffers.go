package config

import (
	"fmt"

	"github.com/scgate/scgate/proxy"
)

// server.max_buffered_bytes is the proxy's buffer budget (its default is
// proxy.DefaultBufferBudget); it must be able to hold the replay buffer.

func (s *Server) buffersDefault() {
	if s.MaxBufferedBytes == 0 {
		s.MaxBufferedBytes = proxy.DefaultBufferBudget
	}
}

func (c *Config) validateBuffers(p *problems) {
	s := c.Server
	replay := c.Rotation.ReplayBody()
	switch {
	case s.MaxBufferedBytes < 0:
		p.add("must be positive, like 33554432 (32 MiB)", "server", "max_buffered_bytes")
	case replay > 0 && s.MaxBufferedBytes < replay+1:
		p.add(fmt.Sprintf("must be larger than rotation.replay_body_bytes (%d), or no request body could ever be kept for a retry", replay),
			"server", "max_buffered_bytes")
	}
}
