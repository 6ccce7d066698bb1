package proxy

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/metrics"
)

// Several panels behind one gateway. Each panel is a broadcaster origin with
// its own keys, transport, rejection probe and capacity limit. A request
// chooses its panel by a path prefix (/panels/NAME/api/v2/..., removed
// before forwarding) or by its Host (NAME.<suffix>); a caller holding a key
// on exactly one panel needs neither. Whatever the request says, the key it
// carries is the caller's key on the chosen panel, and it goes to that
// panel's origin only: the panel is chosen before the key, from the
// configured set alone, and the key is looked up by that panel.

// PanelsPrefix starts a path that names its panel: /panels/NAME/api/v2/...
const PanelsPrefix = "/panels/"

// MaxPanels bounds the configured panels, so that the panel label of the
// metrics stays small.
const MaxPanels = 64

// PanelRouting says how a request names its panel.
type PanelRouting struct {
	// ByHost chooses the panel by the request's Host, NAME.HostSuffix;
	// false chooses it by the /panels/NAME path prefix.
	ByHost bool
	// HostSuffix is the domain under which each panel has a name, e.g.
	// "gw.example.com" for north.gw.example.com. Required with ByHost.
	HostSuffix string
}

// Panel is one broadcaster panel the gateway forwards to.
type Panel struct {
	// Name labels the panel in the vault (a key's upstream), in paths and
	// hosts, and in metrics: a DNS label (ValidPanelName).
	Name string
	// Upstream is the panel's origin (see Options.Upstream).
	Upstream *url.URL
	// Transport carries requests to it; nil means NewTransport(TransportOptions{}).
	Transport http.RoundTripper
	// Rate caps the requests per second sent to the panel by this gateway,
	// across all callers and keys (the broadcaster's own capacity); 0 means
	// no cap. Burst is the bucket size (0: max(1, Rate)).
	Rate  float64
	Burst int
}

// ValidPanelName reports why name cannot name a panel ("" when it can): a
// DNS label of lowercase letters, digits and inner hyphens, at most 63
// bytes, so that it is the same in a path, a host name and a metric label.
func ValidPanelName(name string) string {
	if name == "" || len(name) > 63 {
		return "a panel name is 1 to 63 characters"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(name)-1:
		default:
			return "a panel name has only lowercase letters, digits and inner hyphens (a DNS label)"
		}
	}
	return ""
}

// panel is a configured Panel as the handler uses it.
type panel struct {
	name         string
	upstream     *url.URL
	upstreamHost string // host:port with the default port made explicit
	cacheID      string // the panel in response cache keys: name and origin
	confirm      *confirmer
	forward      http.RoundTripper // the failover over the panel's transport
	limit        *rate.Limiter     // nil: no cap
}

// newPanels builds the handler's panels from opts: opts.Panels, or the one
// panel of opts.Upstream and opts.Transport, named keyvault.DefaultPanel.
func (h *Handler) newPanels(opts Options) error {
	list := opts.Panels
	if len(list) == 0 {
		list = []Panel{{Name: keyvault.DefaultPanel, Upstream: opts.Upstream, Transport: opts.Transport}}
	} else if opts.Upstream != nil {
		return errors.New("proxy: give either Upstream or Panels, not both")
	}
	if len(list) > MaxPanels {
		return fmt.Errorf("proxy: %d panels; at most %d", len(list), MaxPanels)
	}
	if opts.PanelRouting.ByHost {
		if err := validHostSuffix(opts.PanelRouting.HostSuffix); err != nil {
			return err
		}
	}
	h.routing = opts.PanelRouting
	h.routing.HostSuffix = strings.ToLower(h.routing.HostSuffix)
	h.panels = make(map[string]*panel, len(list))
	for _, p := range list {
		if why := ValidPanelName(p.Name); why != "" {
			return fmt.Errorf("proxy: panel %q: %s", p.Name, why)
		}
		if h.panels[p.Name] != nil {
			return fmt.Errorf("proxy: panel %q is configured twice", p.Name)
		}
		if err := validateUpstream(p.Upstream); err != nil {
			return fmt.Errorf("panel %q: %w", p.Name, err)
		}
		if p.Rate < 0 || p.Burst < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) {
			return fmt.Errorf("proxy: panel %q: the rate and burst must not be negative", p.Name)
		}
		transport := p.Transport
		if transport == nil {
			transport = NewTransport(TransportOptions{})
		}
		pn := &panel{name: p.Name, upstream: p.Upstream, upstreamHost: hostPort(p.Upstream)}
		if h.tracer != nil {
			// Innermost, so that every attempt (a retry, a standby key, the
			// rejection probe) has its own client span.
			transport = tracedTransport{base: transport, tracer: h.tracer, host: pn.upstreamHost}
		}
		base := retryTransport{transport}
		pn.cacheID = p.Name + " " + p.Upstream.Scheme + "://" + pn.upstreamHost
		var err error
		if pn.confirm, err = newConfirmer(opts.RejectionCheck, p.Upstream, base, h.log.Named("rejection").With(zapPanel(p.Name))); err != nil {
			return err
		}
		// The connection-error retry sits inside the 403 failover, so a
		// request retried with a standby key is not also repeated on errors.
		pn.forward = &failover{base: base, h: h, panel: pn}
		if p.Rate > 0 {
			burst := p.Burst
			if burst == 0 {
				burst = max(1, int(p.Rate))
			}
			pn.limit = rate.NewLimiter(rate.Limit(p.Rate), burst)
		}
		h.panels[p.Name] = pn
		h.panelNames = append(h.panelNames, p.Name)
	}
	slices.Sort(h.panelNames)
	return nil
}

func validHostSuffix(s string) error {
	if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.ContainsAny(s, ":/ ") {
		return fmt.Errorf("proxy: panel host suffix %q: give a domain such as gw.example.com", s)
	}
	return nil
}

// PanelNames returns the configured panel names, sorted.
func (h *Handler) PanelNames() []string { return slices.Clone(h.panelNames) }

// cutPanelPrefix splits /panels/NAME/rest into NAME and /rest. ok is false
// when path does not start with the prefix; a path that starts with it but
// names no panel segment followed by a slash gives ok with an empty name.
func cutPanelPrefix(path string) (name, rest string, ok bool) {
	after, found := strings.CutPrefix(path, PanelsPrefix)
	if !found {
		return "", path, false
	}
	name, rest, found = strings.Cut(after, "/")
	if !found {
		return "", "", true
	}
	return name, "/" + rest, true
}

// panelNamed reads the panel a request names, before anything else is
// decided about it: in path mode from the escaped path's prefix (the rest
// is what is forwarded), in host mode from the Host. named is "" when the
// request names none; prefixed says the path carried the prefix.
func (h *Handler) panelNamed(host, escapedPath string) (named, rest string, prefixed bool) {
	if h.routing.ByHost {
		return h.panelOfHost(host), escapedPath, false
	}
	name, rest, ok := cutPanelPrefix(escapedPath)
	if !ok {
		return "", escapedPath, false
	}
	if name == "" {
		// "/panels/" or "/panels/x" alone: a panel named "" is never
		// configured, so the request is refused as naming an unknown one.
		return "\x00", "/", true
	}
	return name, rest, true
}

// panelOfHost returns NAME of a Host NAME.<suffix> (any port, any case), or
// "" when the Host is not under the suffix.
func (h *Handler) panelOfHost(host string) string {
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	name, ok := strings.CutSuffix(host, "."+h.routing.HostSuffix)
	if !ok {
		return ""
	}
	return name
}

// choosePanel is the panel stage: after the caller is known, it settles the
// panel the request goes to and the caller's key on it.
func (h *Handler) choosePanel(st *state, vault *keyvault.Vault, named string) (*keyvault.Key, *gatewayError) {
	if named == "" {
		only, ok := vault.OnlyPanel(st.caller)
		if !ok {
			how := "prefix the path with /panels/NAME (e.g. /panels/NAME/api/v2/playlists/)"
			if h.routing.ByHost {
				how = "send it to NAME." + h.routing.HostSuffix
			}
			return nil, newError(CodeUnknownPanel, http.StatusNotFound,
				"caller "+quote(st.caller)+" holds keys on several panels and the request names none: "+how, nil)
		}
		named = only
	}
	p := h.panels[named]
	if p == nil {
		return nil, newError(CodeUnknownPanel, http.StatusNotFound,
			"the request names a panel this gateway does not serve; the panels are named in the gateway's configuration", nil)
	}
	st.panel = p
	key, _ := vault.KeyFor(st.caller, p.name)
	if key == nil {
		return nil, newError(CodePanelForbidden, http.StatusForbidden,
			"caller "+quote(st.caller)+" holds no key on panel "+quote(p.name)+"; ask the gateway's operators to add one under [callers]", nil)
	}
	return key, nil
}

// panelCapacity spends one request of the panel's rate cap, or refuses it.
func (h *Handler) panelCapacity(st *state) *gatewayError {
	if st.panel.limit == nil {
		return nil
	}
	res := st.panel.limit.ReserveN(time.Now(), 1)
	if d := res.Delay(); res.OK() && d == 0 {
		return nil
	} else {
		res.Cancel()
		e := newError(CodeRateLimited, http.StatusTooManyRequests,
			"panel "+quote(st.panel.name)+" is at the request rate this gateway may send it; retry after the number of seconds in Retry-After", nil)
		e.retryAfter = max(1, int(math.Ceil(d.Seconds())))
		h.metrics.RateLimited(st.caller, metrics.ScopePanel)
		return e
	}
}

// forwardPath returns the URL forwarded for r: without the /panels/NAME
// prefix when the request carried one.
func forwardURL(r *http.Request, rest string) *url.URL {
	u := *r.URL
	u.RawPath = rest
	u.Path, _ = url.PathUnescape(rest) // rest passed policy.Normalize
	if u.EscapedPath() != rest {
		u.RawPath = rest
	}
	return &u
}

// panelTransport sends each request through its panel's failover.
type panelTransport struct{}

func (panelTransport) RoundTrip(out *http.Request) (*http.Response, error) {
	st := out.Context().Value(stateKey{}).(*state)
	return st.panel.forward.RoundTrip(out)
}

// zapPanel is the log field naming a panel.
func zapPanel(name string) zap.Field { return zap.String("panel", name) }
