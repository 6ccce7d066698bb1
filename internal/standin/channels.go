package standin

import (
	"fmt"
	"net/http"
	"strings"
)

// channel is a broadcast channel (a stream mount point) with the documented field list, in the
// documented order. bitrate and listeners are strings, as the docs' example shows them. The docs'
// example is cut off after telegram_stream_image; telegram_stream_image_resolution is added by
// analogy with the other networks.
type channel struct {
	ID                            int     `json:"id"`
	Active                        bool    `json:"active"`
	Server                        int     `json:"server"`
	Bitrate                       string  `json:"bitrate"`
	Listeners                     string  `json:"listeners"`
	SType                         string  `json:"s_type"`
	SFormat                       string  `json:"s_format"`
	IPAddress                     string  `json:"ip_address"`
	Port                          int     `json:"port"`
	SSLPort                       int     `json:"ssl_port"`
	MountPoint                    string  `json:"mount_point"`
	Public                        bool    `json:"public"`
	Traf                          int64   `json:"traf"`
	TrafMonth                     int64   `json:"traf_month"`
	Traffic                       string  `json:"traffic"`
	AutoDJEnabled                 bool    `json:"autodj_enabled"`
	CentovacastCompatible         bool    `json:"centovacast_compatible"`
	ProxyEnabled                  bool    `json:"proxy_enabled"`
	ProxyStatus                   int     `json:"proxy_status"`
	ProxyURLPath                  *string `json:"proxy_url_path"`
	SSLProxyEnabled               bool    `json:"ssl_proxy_enabled"`
	SSLProxyStatus                int     `json:"ssl_proxy_status"`
	SSLProxyURLPath               *string `json:"ssl_proxy_url_path"`
	AllowAuthListenersOnly        bool    `json:"allow_auth_listeners_only"`
	QueueSize                     int     `json:"queue_size"`
	BurstSize                     int     `json:"burst_size"`
	ListenersCurrent              int     `json:"listeners_current"`
	ListenersPeak                 int     `json:"listeners_peak"`
	State                         int     `json:"state"`
	LinksHTML                     string  `json:"links_html"`
	StreamURL                     string  `json:"stream_url"`
	SecureStreamURL               string  `json:"secure_stream_url"`
	AdminLink                     string  `json:"admin_link"`
	YoutubeStreamImage            *string `json:"youtube_stream_image"`
	YoutubeStreamImageResolution  *string `json:"youtube_stream_image_resolution"`
	FBStreamImage                 *string `json:"fb_stream_image"`
	FBStreamImageResolution       *string `json:"fb_stream_image_resolution"`
	VKStreamImage                 *string `json:"vk_stream_image"`
	VKStreamImageResolution       *string `json:"vk_stream_image_resolution"`
	TelegramStreamImage           *string `json:"telegram_stream_image"`
	TelegramStreamImageResolution *string `json:"telegram_stream_image_resolution"`
}

// streamHost is where the seeded streams live: the streaming server, not the panel, so these
// URLs are not the upstream's and a gateway has no reason to rewrite them.
const streamHost = "stream.example.test"

// Defaults for a created channel's optional fields (Icecast's own defaults for the buffers).
const (
	defaultQueueSize = 524288
	defaultBurstSize = 65535
)

// derive fills the read-only fields that follow from the writable ones.
func (c *channel) derive() {
	c.StreamURL = fmt.Sprintf("http://%s:%d%s", streamHost, c.Port, c.MountPoint)
	c.SecureStreamURL = ""
	if c.SSLPort > 0 {
		c.SecureStreamURL = fmt.Sprintf("https://%s:%d%s", streamHost, c.SSLPort, c.MountPoint)
	}
	c.AdminLink = fmt.Sprintf("http://%s:%d/admin/", streamHost, c.Port)
	c.LinksHTML = fmt.Sprintf(`<a href="%s" target="_blank">%s %s kbps</a>`,
		c.StreamURL, strings.ToUpper(c.SFormat), c.Bitrate)
	if c.Traffic == "" {
		c.Traffic = "0 B"
	}
}

func (st *store) seedChannels() error {
	seed := []channel{
		{Active: true, Server: serverMain, Bitrate: "192", Listeners: "250", SType: "icecast", SFormat: "mp3",
			Port: 8000, SSLPort: 8443, MountPoint: "/live", Public: true, Traf: 73_400_320, TrafMonth: 1_288_490_188,
			Traffic: "1.2 GB", AutoDJEnabled: true, ListenersCurrent: 5, ListenersPeak: 12, State: 2},
		{Active: true, Server: serverMain, Bitrate: "64", Listeners: "100", SType: "icecast", SFormat: "aac",
			Port: 8000, SSLPort: 8443, MountPoint: "/mobile", Public: true, Traf: 10_485_760, TrafMonth: 209_715_200,
			Traffic: "200.0 MB", AutoDJEnabled: true, ProxyEnabled: true, ProxyStatus: 1, ProxyURLPath: ptr("/mobile-proxy"),
			ListenersCurrent: 2, ListenersPeak: 7, State: 2},
		{Active: false, Server: serverOther, Bitrate: "128", Listeners: "50", SType: "shoutcast2", SFormat: "mp3",
			Port: 8010, MountPoint: "/stream", AutoDJEnabled: true, State: 0},
		{Active: true, Server: serverCity, Bitrate: "128", Listeners: "100", SType: "icecast", SFormat: "mp3",
			Port: 8020, SSLPort: 8463, MountPoint: "/city", Public: true, Traf: 5_242_880, TrafMonth: 104_857_600,
			Traffic: "100.0 MB", AutoDJEnabled: true, ListenersCurrent: 3, ListenersPeak: 9, State: 2},
		{Active: true, Server: serverCoast, Bitrate: "96", Listeners: "50", SType: "icecast", SFormat: "aac",
			Port: 8030, MountPoint: "/coast", Public: true, AutoDJEnabled: true, ListenersCurrent: 1, ListenersPeak: 4, State: 2},
	}
	for _, c := range seed {
		c.IPAddress = "127.0.0.1"
		c.QueueSize, c.BurstSize = defaultQueueSize, defaultBurstSize
		if _, err := st.addChannel(c); err != nil {
			return err
		}
	}
	return nil
}

func (st *store) addChannel(c channel) (channel, error) {
	c.derive()
	st.mu.Lock()
	defer st.mu.Unlock()
	c.ID = st.lastID.channel + 1
	b, err := encodeJSON(c)
	if err != nil {
		return channel{}, err
	}
	st.lastID.channel = c.ID
	st.channels = append(st.channels, entry{id: c.ID, server: c.Server, json: b})
	return c, nil
}

// getChannels answers GET /api/v2/channels/, paginated.
func (s *Server) getChannels(r *http.Request) response {
	q, errs := parseQuery(r, true)
	if errs != nil {
		return errs.response()
	}
	items := s.store.collect(&s.store.channels, byServer(q))
	return response{status: http.StatusOK, body: page(r, q, items, nil)}
}

// postChannel answers POST /api/v2/channels/. The docs give no schema, so this one is ours:
// server, port and mount_point are required; the other writable fields of the channel object
// are optional with the defaults below; counters and URLs are derived; unknown fields are ignored.
func (s *Server) postChannel(w http.ResponseWriter, r *http.Request) response {
	f, bad := s.readForm(w, r)
	if bad != nil {
		return *bad
	}
	c := channel{
		Active:                 f.boolean("active", true),
		Bitrate:                f.text("bitrate", false, true, "128"),
		Listeners:              f.text("listeners", false, true, "100"),
		SType:                  f.text("s_type", false, false, "icecast"),
		SFormat:                f.text("s_format", false, false, "mp3"),
		IPAddress:              f.text("ip_address", false, false, "127.0.0.1"),
		Port:                   f.integer("port", true, 0, 1, 65535),
		SSLPort:                f.integer("ssl_port", false, 0, 0, 65535),
		MountPoint:             f.text("mount_point", true, false, ""),
		Public:                 f.boolean("public", true),
		AutoDJEnabled:          f.boolean("autodj_enabled", true),
		CentovacastCompatible:  f.boolean("centovacast_compatible", false),
		ProxyEnabled:           f.boolean("proxy_enabled", false),
		SSLProxyEnabled:        f.boolean("ssl_proxy_enabled", false),
		AllowAuthListenersOnly: f.boolean("allow_auth_listeners_only", false),
		QueueSize:              f.integer("queue_size", false, defaultQueueSize, 0, 1<<30),
		BurstSize:              f.integer("burst_size", false, defaultBurstSize, 0, 1<<30),
	}
	if srv := f.ref("server", false, serverExists); srv != nil {
		c.Server = *srv
	}
	if c.MountPoint != "" && !strings.HasPrefix(c.MountPoint, "/") {
		f.errs.add("mount_point", `The mount point must start with "/".`)
	}
	if len(f.errs) > 0 {
		return f.errs.response()
	}
	c, err := s.store.addChannel(c)
	if err != nil {
		return internalError()
	}
	return created(c)
}

func ptr[T any](v T) *T { return &v }
