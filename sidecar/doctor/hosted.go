package doctor

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Network is what the connection check asks of the machine's network; net's resolver and a
// UDP "dial" (which sends nothing, but needs a route) by default.
type Network interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	Routable(ctx context.Context, ip net.IP) bool
}

type systemNetwork struct{}

func (systemNetwork) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return net.DefaultResolver.LookupIPAddr(ctx, host)
}

func (systemNetwork) Routable(ctx context.Context, ip net.IP) bool {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", net.JoinHostPort(ip.String(), "5432"))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ConnectionError says why a DATABASE_URL cannot carry the sidecar, and exactly what to use.
type ConnectionError struct{ Problem, Use string }

func (e *ConnectionError) Error() string { return "DATABASE_URL " + e.Problem + "; use " + e.Use }

// CheckConnection recognises what cannot carry the sidecar before anything connects: Supabase's
// pooler (transaction mode on port 6543 breaks session state; neither mode carries logical
// replication), and a host whose only addresses this machine cannot reach (Supabase's direct
// host is IPv6-only unless the project has the IPv4 add-on). nw nil means the machine's own.
func CheckConnection(ctx context.Context, databaseURL string, nw Network) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	if nw == nil {
		nw = systemNetwork{}
	}
	host, port, user := cfg.Host, cfg.Port, cfg.User
	if strings.HasPrefix(host, "/") {
		return nil // a Unix socket
	}
	if strings.HasSuffix(host, ".pooler.supabase.com") || port == 6543 {
		what := "session mode, which does not carry logical replication"
		if port == 6543 {
			what = "transaction mode, which carries neither logical replication nor the session state keapsync keeps"
		}
		return &ConnectionError{
			Problem: fmt.Sprintf("is Supabase's connection pooler (%s:%d, %s)", host, port, what),
			Use:     directURL(databaseURL, user) + " (Project Settings → Database → Connection string → Direct connection)",
		}
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	lookup, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := nw.LookupIPAddr(lookup, host)
	if err != nil {
		return &ConnectionError{Problem: fmt.Sprintf("names host %s, which does not resolve (%v)", host, err),
			Use: "the host shown under Project Settings → Database → Connection string → Direct connection"}
	}
	var v6 []string
	for _, a := range addrs {
		if nw.Routable(ctx, a.IP) {
			return nil
		}
		if a.IP.To4() == nil {
			v6 = append(v6, a.IP.String())
		}
	}
	use := "a network this machine can reach it from"
	if len(v6) == len(addrs) {
		use = "a machine with IPv6, or enable Supabase's IPv4 add-on (Project Settings → Add-ons) so the direct host gets an IPv4 address; " +
			"the pooler is not a way around it (it carries no replication)"
	}
	return &ConnectionError{Problem: fmt.Sprintf("names host %s, whose addresses %v this machine has no route to", host, addrsOf(addrs)), Use: use}
}

// directURL rewrites a Supabase pooler URL to the project's direct connection: the pooler's user
// is <role>.<project ref>; the direct host is db.<project ref>.supabase.co, port 5432.
func directURL(databaseURL, user string) string {
	role, ref, ok := strings.Cut(user, ".")
	if !ok {
		return "the direct connection postgresql://<role>:<password>@db.<project ref>.supabase.co:5432/postgres"
	}
	// A URL keeps its database and parameters; a keyword/value DSN ("host=… user=…") is no URL,
	// and rewriting it as one would print nonsense.
	u, err := url.Parse(databaseURL)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "postgresql://" + role + ":<password>@db." + ref + ".supabase.co:5432/postgres"
	}
	u.User = url.UserPassword(role, "<password>")
	u.Host = "db." + ref + ".supabase.co:5432"
	return strings.Replace(u.String(), "%3Cpassword%3E", "<password>", 1)
}

func addrsOf(addrs []net.IPAddr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.IP.String()
	}
	return out
}
