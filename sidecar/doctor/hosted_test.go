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
