package tracing

import (
	"crypto/tls"

	"google.golang.org/grpc/credentials"
)

func grpcTLS(c *tls.Config) credentials.TransportCredentials { return credentials.NewTLS(c) }
