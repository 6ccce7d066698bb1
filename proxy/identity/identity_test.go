package identity

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fake is a Resolver with a fixed answer that counts its calls.
type fake struct {
	id    string
	err   error
	calls int
}

func (f *fake) Resolve(*http.Request) (string, error) {
	f.calls++
	return f.id, f.err
}

func TestChain(t *testing.T) {
	refused := errors.New("identity: refused for a test")
	none := func() *fake { return &fake{err: ErrNoIdentity} }
	is := func(id string) *fake { return &fake{id: id} }
	tests := []struct {
		name      string
		chain     []*fake
		wantID    string
		wantErr   error
		wantCalls []int
	}{
		{"empty", nil, "", ErrNoIdentity, nil},
		{"first wins", []*fake{is("a"), is("b")}, "a", nil, []int{1, 0}},
		{"falls through no-identity", []*fake{none(), none(), is("c")}, "c", nil, []int{1, 1, 1}},
		{"all no-identity", []*fake{none(), none()}, "", ErrNoIdentity, []int{1, 1}},
		{"refusal stops the chain", []*fake{none(), {err: refused}, is("c")}, "", refused, []int{1, 1, 0}},
		{"wrapped no-identity falls through", []*fake{{err: errors.Join(ErrNoIdentity, errors.New("detail"))}, is("d")}, "d", nil, []int{1, 1}},
		{"empty identity fails closed", []*fake{{}, is("e")}, "", errEmptyIdentity, []int{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Chain
			for _, f := range tt.chain {
				c = append(c, f)
			}
			id, err := c.Resolve(httptest.NewRequest(http.MethodGet, "/", nil))
			if id != tt.wantID || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("got (%q, %v), want (%q, %v)", id, err, tt.wantID, tt.wantErr)
			}
			for i, f := range tt.chain {
				if f.calls != tt.wantCalls[i] {
					t.Errorf("resolver %d called %d times, want %d", i+1, f.calls, tt.wantCalls[i])
				}
			}
		})
	}
}

func TestChainNilEntryFailsClosed(t *testing.T) {
	c := Chain{&fake{err: ErrNoIdentity}, nil, &fake{id: "x"}}
	_, err := c.Resolve(httptest.NewRequest(http.MethodGet, "/", nil))
	if err == nil || errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), "entry 2") {
		t.Errorf("got %v, want a refusal naming entry 2", err)
	}
}

func TestChainNests(t *testing.T) {
	inner := Chain{&fake{err: ErrNoIdentity}}
	c := Chain{inner, &fake{id: "outer"}}
	if id, err := c.Resolve(httptest.NewRequest(http.MethodGet, "/", nil)); id != "outer" || err != nil {
		t.Errorf("got (%q, %v)", id, err)
	}
}

func TestStatic(t *testing.T) {
	r, err := Static("playlist-sync")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := r.Resolve(httptest.NewRequest(http.MethodGet, "/", nil)); id != "playlist-sync" || err != nil {
		t.Errorf("got (%q, %v)", id, err)
	}
	for _, bad := range []string{"", " padded", "tab\tinside", "line\nbreak", "bad\xffutf8"} {
		if _, err := Static(bad); err == nil {
			t.Errorf("Static(%q) accepted", bad)
		}
	}
}
