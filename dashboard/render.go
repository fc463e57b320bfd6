package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates/*.html files that are whole pages (each parsed with layout.html).
var pageNames = []string{"overview", "health", "conflicts", "conflict", "deadletters", "history",
	"data", "settings", "signin", "error"}

type pages struct{ set map[string]*template.Template }

func parsePages() (*pages, error) {
	p := &pages{set: map[string]*template.Template{}}
	for _, n := range pageNames {
		t, err := template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html",
			"templates/charts.html", "templates/table.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		p.set[n] = t
	}
	return p, nil
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      string
	User     *user
	CSRF     string
	Accounts []account
	Account  *account
	Flash    string
	Live     liveConfig
	Data     any
}

// render writes a page, or only one of its fragments when the live script asks for it
// (?fragment=name): the fragment templates are the same ones the page is built from.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) error {
	t := s.pages.set[name]
	tmpl := "layout"
	if f := r.URL.Query().Get("fragment"); f != "" {
		tmpl = "frag-" + f
		if t.Lookup(tmpl) == nil {
			return &pageError{Status: 404, Code: "no_fragment", Msg: "No such part of this page."}
		}
	}
	if v.Flash == "" {
		v.Flash = flashes[r.URL.Query().Get("done")]
	}
	// Render to a buffer so a template error becomes an error page, not half a page.
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// flashes are the only messages a redirect may ask for; nothing from the URL is echoed.
var flashes = map[string]string{
	"resolved":  "Conflict resolved. The chosen value is queued for push to Keap.",
	"bulk":      "Conflicts resolved by policy.",
	"retry":     "Dead letter queued for retry.",
	"discarded": "Dead letter discarded.",
	"rollback":  "Change rolled back. The rollback is pushed to Keap like any edit.",
	"magic":     "Check your email for a sign-in link.",
	"signedout": "You are signed out.",
	"saved":     "Saved.",
}

// pageError is an error with what to tell the person; everything else is a 500 with a code.
type pageError struct {
	Status int
	Code   string
	Msg    string
	Err    error
}

func (e *pageError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Msg
}

func (e *pageError) Unwrap() error { return e.Err }

// fail is the one renderer of handler errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *pageError
	if !errors.As(dbError(err), &pe) {
		pe = &pageError{Status: 500, Code: "internal", Msg: "Something went wrong on our side. Try again; if it persists, check the keapsync logs.", Err: err}
	}
	if pe.Status >= 500 {
		s.log.Error("request failed", "path", r.URL.Path, "code", pe.Code, "err", err)
	} else {
		s.log.Info("request refused", "path", r.URL.Path, "code", pe.Code, "err", err)
	}
	if r.URL.Query().Get("fragment") != "" || r.Header.Get("Accept") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(pe.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": pe.Code, "message": pe.Msg})
		return
	}
	v := &view{Title: "Error", User: userOf(r.Context()), Data: pe}
	if v.User != nil {
		v.CSRF = s.csrfToken(w, r)
	}
	if rerr := s.render(w, r, pe.Status, "error", v); rerr != nil {
		http.Error(w, pe.Msg, pe.Status)
	}
}

func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

var funcs = template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"ago": func(now time.Time, t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		d := now.Sub(*t)
		future := d < 0
		if future {
			d = -d
		}
		var s string
		switch {
		case d < time.Minute:
			s = "moments"
		case d < time.Hour:
			s = fmt.Sprintf("%d min", int(d.Minutes()))
		case d < 48*time.Hour:
			s = fmt.Sprintf("%d h", int(d.Hours()))
		default:
			s = fmt.Sprintf("%d days", int(d.Hours()/24))
		}
		if future {
			return "in " + s
		}
		return s + " ago"
	},
	// trimAgo turns "5 min ago" into "5 min" (a lag, not a moment).
	"trimAgo": func(s string) string { return strings.TrimSuffix(s, " ago") },
	"num":     func(n int64) string { return group(strconv.FormatInt(n, 10)) },
	"money":   func(f float64) string { return "$" + group(strconv.FormatFloat(f, 'f', 2, 64)) },
	"json":    indentJSON,
	"deref":   func(p *int64) int64 { return *p },
	"preview": func() int { return payloadPreview },
	"deref2":  func(p *bool) bool { return *p },
	"ptr":     func(t time.Time) *time.Time { return &t },
	"bytes": func(n int64) string {
		switch {
		case n >= 1<<30:
			return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GB"
		case n >= 1<<20:
			return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
		case n >= 1<<10:
			return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " kB"
		}
		return strconv.FormatInt(n, 10) + " B"
	},
	"pct": func(done, total int64) int64 {
		if total <= 0 {
			return 0
		}
		return min(100, done*100/total)
	},
}

// group puts thousands separators into the integer part of a decimal string.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// indentJSON shows JSON indented, or as it is when it does not parse.
func indentJSON(b []byte) string {
	if len(b) == 0 {
		return "—"
	}
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}
