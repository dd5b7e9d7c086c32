package main

import (
	"os"
	"strings"
	"testing"
)

// dockerInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstruction struct{ cmd, args string }

func parseDockerfile(src string) []dockerInstruction {
	var out []dockerInstruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	for _, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") { // comments, parser directives
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return out
}

// finalUser returns the user the image's last stage runs as and whether
// that user is known to be non-root: the last USER of the stage, else what
// its base runs as (a stage it builds on, or a distroless ":nonroot" tag).
func finalUser(src string) (user string, nonRoot bool) {
	type stage struct {
		name, base string
		users      []string
	}
	var stages []*stage
	for _, in := range parseDockerfile(src) {
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			var s stage
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					s.name = f[i+1]
					i++
				case s.base == "":
					s.base = f[i]
				}
			}
			stages = append(stages, &s)
		case "USER":
			if len(stages) > 0 {
				last := stages[len(stages)-1]
				last.users = append(last.users, in.args)
			}
		}
	}
	var effective func(i int) (string, bool)
	effective = func(i int) (string, bool) {
		s := stages[i]
		if n := len(s.users); n > 0 {
			u := s.users[n-1]
			name, _, _ := strings.Cut(u, ":")
			return u, name != "" && name != "root" && name != "0"
		}
		for j := i - 1; j >= 0; j-- {
			if stages[j].name != "" && strings.EqualFold(stages[j].name, s.base) {
				return effective(j)
			}
		}
		if _, tag, ok := strings.Cut(s.base, ":"); ok && (tag == "nonroot" || strings.HasSuffix(tag, "-nonroot")) &&
			strings.Contains(s.base, "distroless") {
			return "nonroot (from " + s.base + ")", true
		}
		return "root (default of " + s.base + ")", false
	}
	if len(stages) == 0 {
		return "no FROM", false
	}
	return effective(len(stages) - 1)
}

func TestDockerImageRunsAsNonRoot(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	user, ok := finalUser(string(src))
	if !ok {
		t.Fatalf("the image's final stage runs as %s; it must run as a non-root user", user)
	}
	t.Logf("final stage runs as %s", user)
}

// The check itself tells root from non-root.
func TestFinalUser(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, src string
		nonRoot   bool
	}{
		{"distroless nonroot tag", "FROM golang AS build\nRUN go build\nFROM gcr.io/distroless/static-debian12:nonroot\n", true},
		{"distroless root tag", "FROM gcr.io/distroless/static-debian12\n", false},
		{"USER uid", "FROM debian\nUSER 65532:65532\n", true},
		{"USER root after a non-root one", "FROM gcr.io/distroless/static:nonroot\nUSER 10001\nRUN x \\\n  y\nUSER root\n", false},
		{"USER 0:0", "FROM alpine\nUSER 0:0\n", false},
		{"non-root only in the build stage", "FROM golang AS build\nUSER 1000\nFROM alpine\nCOPY --from=build /a /a\n", false},
		{"final stage built on a non-root stage", "FROM alpine AS base\nUSER app\nFROM base AS final\nCOPY a /a\n", true},
		{"USER in a comment", "FROM alpine\n# USER 1000\n", false},
		{"platform flag", "FROM --platform=linux/amd64 gcr.io/distroless/base:nonroot AS run\n", true},
	} {
		if _, got := finalUser(c.src); got != c.nonRoot {
			t.Errorf("%s: non-root %v, want %v", c.name, got, c.nonRoot)
		}
	}
}
