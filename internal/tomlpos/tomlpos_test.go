package tomlpos

import "testing"

func TestLine(t *testing.T) {
	doc := []byte(`# comment
top = 1

[server]
listen = "x"
tls = "off"

[identity.cidr]
"10.0.0.0/8" = "a"

[[keys.admin]]
secret = "s1"

[[keys.admin]]
secret = "s2"
inline = { a = 1, b = [1,
  2] }
`)
	ix := Build(doc)
	cases := []struct {
		path []string
		want int
	}{
		{[]string{"top"}, 2},
		{[]string{"server"}, 4},
		{[]string{"server", "tls"}, 6},
		{[]string{"server", "missing"}, 4}, // falls back to the table
		{[]string{"identity", "cidr", "10.0.0.0/8"}, 9},
		{[]string{"keys", "admin", Elem(0), "secret"}, 12},
		{[]string{"keys", "admin", Elem(1)}, 14},
		{[]string{"keys", "admin", Elem(1), "secret"}, 15},
		{[]string{"keys", "admin", Elem(1), "inline", "b"}, 16},
		{[]string{"nowhere"}, 0},
	}
	for _, c := range cases {
		if got := ix.Line(c.path...); got != c.want {
			t.Errorf("Line(%q) = %d, want %d", c.path, got, c.want)
		}
	}
	var none *Index
	if none.Line("x") != 0 {
		t.Error("nil index must answer 0")
	}
}
