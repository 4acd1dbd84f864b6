package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEndpoints(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := parseEndpoints(" local=local, host-a=ssh://deploy@host-a ,sock=unix:///run/docker.sock", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "local" || got[1].URL != "ssh://deploy@host-a" || got[2].URL != "unix:///run/docker.sock" {
		t.Fatalf("parseEndpoints = %+v", got)
	}
	got, err = parseEndpoints("local=local", file(`{"endpoints":[{"name":"b","url":"tcp://127.0.0.1:2376","tls":{"ca":"ca.pem","cert":"c.pem","key":"k.pem"},"filters":{"label":["env=prod"]},"maxSessions":8}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].MaxSessions != 8 || got[1].Filters["label"][0] != "env=prod" || got[1].TLS.Key != "k.pem" {
		t.Fatalf("parseEndpoints with a file = %+v", got)
	}
	if got, err := parseEndpoints("", ""); got != nil || err != nil {
		t.Fatalf(`parseEndpoints("", "") = %v, %v; want nil: the single engine of docker-ssh`, got, err)
	}

	for _, tt := range []struct {
		name, list, file, want string
	}{
		{"not name=url", "ssh://host-a", "", `"ssh://host-a" is not name=url`},
		{"password hidden", "ssh://u:hunter2@h", "", `"ssh://u:[REDACTED]@h" is not name=url`},
		{"bad name", "Host.A=local", "", `endpoint name "Host.A"`},
		{"twice", "a=local,a=local", "", `endpoint "a" is given twice`},
		{"unknown scheme", "a=http://h", "", `url "http://h": want local, unix://, tcp:// or ssh://`},
		{"tcp without tls", "a=tcp://10.0.0.5:2375", "", "a tcp:// endpoint needs tls"},
		{"unix without path", "a=unix://", "", "has no socket path"},
		{"unknown field", "", `{"endpoints":[{"name":"a","url":"local","tsl":{}}]}`, `unknown field "tsl"`},
		{"empty file", "", `{"endpoints":[]}`, "no endpoints"},
		{"negative limit", "", `{"endpoints":[{"name":"a","url":"local","maxSessions":-1}]}`, "maxSessions -1"},
		{"missing file", "", "-", "ENDPOINTS_FILE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.file
			switch f {
			case "":
			case "-":
				f = filepath.Join(dir, "missing.json")
			default:
				f = file(f)
			}
			got, err := parseEndpoints(tt.list, f)
			if err == nil || !strings.Contains(err.Error(), tt.want) || got != nil {
				t.Fatalf("parseEndpoints(%q) = %v, %v; want an error containing %q", tt.list, got, err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}
