package doctor_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/doctor"
)

// network answers lookups from a table; only the addresses in routable have a route.
type network struct {
	hosts    map[string][]string
	routable map[string]bool
}

func (n network) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := n.hosts[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []net.IPAddr
	for _, ip := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return out, nil
}

func (n network) Routable(_ context.Context, ip net.IP) bool { return n.routable[ip.String()] }

func TestCheckConnectionSaysWhatToUseInstead(t *testing.T) {
	t.Parallel()
	nw := network{
		hosts: map[string][]string{
			"db.abcdefgh.supabase.co":  {"2600:1f18::1"},
			"db.ipv4addon.supabase.co": {"2600:1f18::2", "3.3.3.3"},
			"db.example.com":           {"10.0.0.5"},
		},
		routable: map[string]bool{"3.3.3.3": true, "10.0.0.5": true},
	}
	for _, tc := range []struct {
		url  string
		want []string // "" = accepted
	}{
		{"postgresql://postgres.abcdefgh:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
			[]string{"pooler", "transaction mode", "postgresql://postgres:<password>@db.abcdefgh.supabase.co:5432/postgres"}},
		{"postgresql://keapsync_sidecar.abcdefgh:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres",
			[]string{"session mode", "logical replication", "postgresql://keapsync_sidecar:<password>@db.abcdefgh.supabase.co:5432/postgres"}},
		{"postgresql://postgres:pw@db.abcdefgh.supabase.co:5432/postgres", []string{"2600:1f18::1", "no route", "IPv4 add-on"}},
		{"postgresql://postgres:pw@db.nothere.supabase.co:5432/postgres", []string{"does not resolve"}},
		{"postgresql://postgres:pw@db.ipv4addon.supabase.co:5432/postgres", nil},
		{"postgres://postgres@db.example.com/postgres", nil},
		{"postgres://postgres@127.0.0.1:5432/postgres", nil},
		// A pooler user without the project ref: the advice names the form to fill in.
		{"postgresql://postgres:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres",
			[]string{"session mode", "postgresql://<role>:<password>@db.<project ref>.supabase.co:5432/postgres"}},
		// A keyword/value DSN is no URL: the advice is still a whole direct URL.
		{"host=aws-0-eu-central-1.pooler.supabase.com port=6543 user=postgres.abcdefgh dbname=postgres",
			[]string{"transaction mode", "use postgresql://postgres:<password>@db.abcdefgh.supabase.co:5432/postgres "}},
		{"postgres://postgres@/postgres?host=/var/run/postgresql", nil}, // a Unix socket: nothing to resolve
	} {
		err := doctor.CheckConnection(context.Background(), tc.url, nw)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v, want accepted", tc.url, err)
			}
			continue
		}
		var ce *doctor.ConnectionError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a ConnectionError", tc.url, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.url, err, w)
			}
		}
	}
}

// Without a Network the machine's own is asked: localhost resolves (from /etc/hosts) and the
// loopback has a route. A URL that does not parse is named as DATABASE_URL's problem.
func TestCheckConnectionOnThisMachine(t *testing.T) {
	t.Parallel()
	if err := doctor.CheckConnection(context.Background(), "postgres://postgres@localhost:5432/postgres", nil); err != nil {
		t.Errorf("localhost: %v", err)
	}
	err := doctor.CheckConnection(context.Background(), "postgres://postgres@localhost:notaport/postgres", nil)
	var ce *doctor.ConnectionError
	if err == nil || errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") {
		t.Errorf("a URL that does not parse: %v", err)
	}
}
