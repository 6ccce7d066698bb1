package proxy

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/metrics"
)

// recorder notes the status and size of the response for the access log. It
// unwraps for http.ResponseController, so flushing and 1xx responses still
// reach the caller's connection.
type recorder struct {
	http.ResponseWriter
	st          *state
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if code < 200 {
		// ReverseProxy copies an informational answer's headers (103 Early
		// Hints) straight here, past modifyResponse: only scgate may say
		// an answer is its own.
		dropScgateHeaders(r.Header())
	}
	if !r.wroteHeader && code >= 200 {
		r.wroteHeader = true
		r.st.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.wroteHeader = true
		r.st.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.st.bytesOut += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe writes the request's metrics and its one access-log line.
func (h *Handler) observe(r *http.Request, st *state) {
	elapsed := time.Since(st.start)
	caller := metrics.UnknownCaller
	if st.known {
		caller = st.caller
	}
	status := st.status
	if status == 0 {
		status = statusClientClosed
	}
	h.startSpan(r, st) // a request refused before identification has none yet
	traceID, sampled := st.traceID()
	exemplar := ""
	if sampled {
		exemplar = traceID
	}
	h.metrics.RequestTraced(caller, methodLabel(r.Method), st.route, status, elapsed, exemplar)
	h.endSpan(r, st, caller, status)
	if ce := h.log.Check(zap.InfoLevel, "request"); ce != nil {
		// One allocation for the line's fields, sized for the longest line.
		fields := make([]zap.Field, 0, 20)
		fields = append(fields,
			zap.String("request_id", st.id),
			zap.String("caller", caller), // as the metrics say it
			zap.String("method", r.Method),
			zap.String("route", st.route),
			zap.String("path", r.URL.Path),
			zap.Int("status", status),
			zap.Int("upstream_status", st.upstreamStatus),
			zap.Duration("duration", elapsed),
			zap.Int64("bytes_in", max(r.ContentLength, 0)),
			zap.Int64("bytes_out", st.bytesOut),
			zap.String("remote", r.RemoteAddr),
		)
		if traceID != "" {
			fields = append(fields, zap.String("trace_id", traceID))
		}
		if !st.known && st.caller != "" {
			// Identified, but not in the vault: who it was, for ops.
			fields = append(fields, zap.String("identity", st.caller))
		}
		if st.panel != nil {
			fields = append(fields, zapPanel(st.panel.name))
		}
		if st.version != nil {
			fields = append(fields, zap.String("key", st.version.Key), zap.String("key_prefix", st.version.Secret.Prefix()))
		}
		if st.retry.refused != nil {
			fields = append(fields, zap.String("refused_key_prefix", st.retry.refused.Secret.Prefix()))
		}
		if st.station.Result != "" {
			fields = append(fields, zap.String("station_check", st.station.Result))
			if st.station.Station != 0 {
				fields = append(fields, zap.Int("station", st.station.Station))
			}
		}
		if st.bufferFallback != "" {
			fields = append(fields, zap.String("buffer_fallback", st.bufferFallback))
		}
		if st.cache != "" {
			fields = append(fields, zap.String("cache", st.cache))
		}
		if st.code != "" {
			fields = append(fields, zap.String("error", st.code))
			if st.err != nil {
				fields = append(fields, zap.NamedError("cause", st.err))
			}
		}
		ce.Write(fields...)
	}
}

// methodLabel keeps the method label bounded: a caller can send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
