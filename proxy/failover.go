package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"

	"github.com/scgate/scgate/keyvault"
)

// Rejection failover (docs/design.md, Vault file). When the broadcaster answers 403 to a request carrying
// a key version and the refusal of the key itself is confirmed (confirm.go:
// the canary route refuses the version too), the version is marked rejected
// for a cool-down (keyvault.Rejections), counted and logged once per
// cool-down, and a replayable request is sent once more with the key's next
// standby version. A 403 that is not confirmed (a permission refusal of the
// caller's route) passes to the caller and changes nothing. So a caller sees no failure when ops revoke an old key in the
// panel a little before every gateway has moved to the new one. With no
// standby left, or a request that cannot be replayed, the broadcaster's 403
// reaches the caller unchanged.

// DefaultReplayBodyBytes is the largest request body buffered for a retry
// when Options.ReplayBodyBytes is 0.
const DefaultReplayBodyBytes = 64 << 10

// maxDiscard bounds what is read of a refused answer before the retry, so
// that its connection can be reused without reading a large body.
const maxDiscard = 8 << 10

// retryState is what the forward stage needs to retry one request.
type retryState struct {
	key        *keyvault.Key     // the caller's key, in the request's vault snapshot
	replayable bool              // the body is empty or buffered in body
	body       []byte            // the buffered request body
	reserved   int64             // bytes of the buffer budget reserved for body
	refused    *keyvault.Version // the version the broadcaster refused, when it was retried
}

// prepareReplay makes the request replayable when it has no body or a body
// of at most replayBody bytes, which it then reads whole. A larger body is
// streamed as before and the request is not retried.
func (h *Handler) prepareReplay(r *http.Request, st *state) *gatewayError {
	if st.retry.body != nil {
		return nil // the station stage read the body (and made it replayable if replays are on)
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		st.retry.replayable = true
		return nil
	}
	if h.replayBody <= 0 || r.ContentLength > h.replayBody {
		return nil
	}
	// A body of unknown length may take up to the limit (and one byte that
	// shows it is longer).
	reserve := h.replayBody + 1
	if r.ContentLength > 0 {
		reserve = r.ContentLength
	}
	if !h.budget.take(reserve, useReplay, st) {
		return nil // streamed, and not retried
	}
	st.retry.reserved = reserve
	var b bytes.Buffer
	b.Grow(int(reserve) + bytes.MinRead) // so that ReadFrom never grows it
	_, err := b.ReadFrom(io.LimitReader(r.Body, h.replayBody+1))
	buf := b.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return errTooLarge(tooBig.Limit, err)
		case r.Context().Err() != nil:
			return newError("client_closed", statusClientClosed, "the caller went away", err)
		}
		return newError(CodeBadRequest, http.StatusBadRequest, "the request body could not be read completely", err)
	}
	if int64(len(buf)) > h.replayBody {
		// A chunked body longer than the limit: send what was read, then the rest.
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return nil
	}
	st.retry.replayable, st.retry.body = true, buf
	r.Body, _ = st.retry.getBody()
	r.ContentLength = int64(len(buf))
	// The transport may then also resend it on a reused connection that closed.
	r.GetBody = st.retry.getBody
	return nil
}

// getBody returns a fresh reader of the buffered body (http.Request.GetBody).
func (rs *retryState) getBody() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(rs.body)), nil
}

// failover is the transport of the forward stage: it retries a request
// refused for its key, as described above.
type failover struct {
	base  http.RoundTripper
	h     *Handler
	panel *panel // the panel base sends to; keys and probes are its own
}

func (f *failover) RoundTrip(out *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(out)
	if err != nil || resp.StatusCode != http.StatusForbidden {
		return resp, err
	}
	st, _ := out.Context().Value(stateKey{}).(*state)
	if st == nil || st.version == nil || st.retry.key == nil {
		return resp, nil
	}
	refused := st.version
	if !f.panel.confirm.refused(out.Context(), st, refused, resp) {
		return resp, nil
	}
	// The confirmation may have waited: the standby comes from the vault in
	// force now, and a caller removed meanwhile gets no retry.
	key, _ := f.h.vault.Current().KeyFor(st.caller, f.panel.name)
	if key != nil {
		st.retry.key = key
	}
	f.h.reject(st, refused)
	if key == nil {
		return resp, nil
	}
	next := key.Standby(f.h.now(), refused, f.h.rejections)
	if next == nil || !st.retry.replayable {
		return resp, nil
	}
	retry := out.Clone(out.Context())
	retry.Header["SC-API-KEY"] = []string{next.Secret.Value()}
	retry.Body, retry.GetBody = nil, nil
	if len(st.retry.body) > 0 {
		retry.Body, _ = st.retry.getBody()
		retry.GetBody = st.retry.getBody
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDiscard)
	_ = resp.Body.Close()
	st.retry.refused, st.version = refused, next
	st.spanEvent("key.failover", attribute.String("scgate.refused_key_prefix", refused.Secret.Prefix()),
		attribute.String("scgate.key_prefix", next.Secret.Prefix()))

	resp, err = f.base.RoundTrip(retry)
	if err == nil && resp.StatusCode == http.StatusForbidden && f.panel.confirm.refused(out.Context(), st, next, resp) {
		// Refused too: no second retry, but no later request should use it.
		f.h.reject(st, next)
	}
	return resp, err
}

// reject records the broadcaster's refusal of v; the first refusal of a
// cool-down is counted and logged (prefix only), the others are not.
func (h *Handler) reject(st *state, v *keyvault.Version) {
	until, first := h.rejections.Reject(v)
	st.spanEvent("key.rejected", attribute.String("scgate.key_prefix", v.Secret.Prefix()))
	if !first {
		return
	}
	h.metrics.KeyRejected(st.panel.name, v.Key, v.Secret.Prefix())
	standby := "none"
	if next := st.retry.key.Standby(h.now(), v, h.rejections); next != nil {
		standby = next.Secret.Prefix()
	}
	h.log.Warn("the broadcaster refused a key version (403); requests use a standby version until the cool-down ends. If the key was revoked, remove it from the vault",
		zapPanel(st.panel.name), zap.String("key", v.Key), zap.String("prefix", v.Secret.Prefix()), zap.String("standby", standby),
		zap.Duration("cool_down", h.rejections.CoolDown()), zap.Time("until", until), zap.String("request_id", st.id))
}
