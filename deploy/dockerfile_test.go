package deploy

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scgate/scgate/deploy/image"
)

// dockerfileStage is the instructions of one stage of a Dockerfile, with
// continuation lines joined and comments dropped.
type dockerfileStage struct {
	from         string
	instructions [][2]string // keyword (upper case), arguments
}

func parseDockerfile(t *testing.T, text string) []dockerfileStage {
	t.Helper()
	var stages []dockerfileStage
	var logical string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if logical == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			logical += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical += trimmed
		kw, args, _ := strings.Cut(logical, " ")
		logical = ""
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			stages = append(stages, dockerfileStage{from: args})
			continue
		}
		if len(stages) == 0 {
			if kw != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", kw)
			}
			continue
		}
		st := &stages[len(stages)-1]
		st.instructions = append(st.instructions, [2]string{kw, strings.TrimSpace(args)})
	}
	return stages
}

func (s dockerfileStage) all(kw string) []string {
	var out []string
	for _, in := range s.instructions {
		if in[0] == kw {
			out = append(out, in[1])
		}
	}
	return out
}

func jsonArray(t *testing.T, what, s string) []string {
	t.Helper()
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		t.Errorf("Dockerfile %s %s: want the JSON (exec) form: %v", what, s, err)
	}
	return a
}

// TestDockerfileMatchesTheBuilder: the Dockerfile (for users with a Docker
// engine, not buildable here) produces the image deploy/image builds: a
// static binary at the same path, the same non-root user, entrypoint,
// command, config path and ports, on a base without a shell.
func TestDockerfileMatchesTheBuilder(t *testing.T) {
	stages := parseDockerfile(t, string(readFile(t, "Dockerfile")))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a runtime stage", len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]
	if !slices.ContainsFunc(build.all("RUN"), func(s string) bool {
		return strings.Contains(s, "CGO_ENABLED=0") && strings.Contains(s, "./cmd/scgate")
	}) {
		t.Error("Dockerfile: the build stage does not build ./cmd/scgate with CGO_ENABLED=0")
	}
	base := strings.Fields(run.from)[0]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("Dockerfile: runtime base %s, want scratch or distroless static (no shell)", base)
	}
	if len(run.all("RUN")) > 0 {
		t.Error("Dockerfile: RUN in the runtime stage needs a shell the image must not have")
	}
	wantUser := strconv.Itoa(image.UID) + ":" + strconv.Itoa(image.GID)
	if u := run.all("USER"); len(u) != 1 || u[0] != wantUser {
		t.Errorf("Dockerfile USER %q, want %s", u, wantUser)
	}
	if e := run.all("ENTRYPOINT"); len(e) != 1 || !slices.Equal(jsonArray(t, "ENTRYPOINT", e[0]), []string{image.BinaryPath}) {
		t.Errorf("Dockerfile ENTRYPOINT %q, want [%q]", e, image.BinaryPath)
	}
	if c := run.all("CMD"); len(c) != 1 || !slices.Equal(jsonArray(t, "CMD", c[0]), []string{"run"}) {
		t.Errorf("Dockerfile CMD %q, want [\"run\"]", c)
	}
	if !slices.Contains(run.all("ENV"), "SCGATE_CONFIG="+image.ConfigPath) {
		t.Errorf("Dockerfile ENV %q lacks SCGATE_CONFIG=%s", run.all("ENV"), image.ConfigPath)
	}
	var ports []string
	for _, e := range run.all("EXPOSE") {
		ports = append(ports, strings.Fields(e)...)
	}
	if !slices.Equal(slices.Sorted(slices.Values(ports)), slices.Sorted(slices.Values(image.ExposedPorts))) {
		t.Errorf("Dockerfile EXPOSE %v, want %v", ports, image.ExposedPorts)
	}
	if !slices.ContainsFunc(run.all("COPY"), func(s string) bool { return strings.HasSuffix(s, " "+image.BinaryPath) }) {
		t.Errorf("Dockerfile: no COPY of the binary to %s", image.BinaryPath)
	}
}
