package dashboard

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5"
)

// The JSON API: what the pages show, for scripts and other apps. It takes the Supabase access
// token as "Authorization: Bearer", never the session cookie (so a page elsewhere cannot ride a
// signed-in browser), and queries as that person like the pages do, so row-level security scopes
// it. Every error is {"code", "message"} with a stable code.

//go:embed openapi.yaml
var openapiYAML []byte

// loadOpenAPI parses and checks the embedded document once, at startup, and returns it as the
// JSON served at /api/v1/openapi.json.
func loadOpenAPI() ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	return b, nil
}

// apiFunc answers one API request for a verified person; the value is written as JSON.
type apiFunc func(r *http.Request, u *user) (any, error)

func (s *Server) apiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(s.openapi)
	})
	mux.Handle("GET /api/v1/accounts", s.api(s.apiAccounts))
	mux.Handle("GET /api/v1/accounts/{account}/kpis", s.api(forAccount(s, loadKPIs)))
	mux.Handle("GET /api/v1/accounts/{account}/sync-status", s.api(forAccount(s, loadSyncSummary)))
	mux.Handle("GET /api/v1/accounts/{account}/conflicts", s.api(forAccount(s, loadConflicts)))
	mux.Handle("GET /api/v1/accounts/{account}/health", s.api(forAccount(s, s.loadHealth)))
	// Everything else under /api/ answers in JSON too, not with a page.
	mux.Handle("/api/", s.cors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			writeAPIError(w, http.StatusMethodNotAllowed, "method_not_allowed", "This API only reads: use GET.")
			return
		}
		writeAPIError(w, http.StatusNotFound, "no_route", "No such API route. The routes are listed at /api/v1/openapi.json.")
	})))
}

// api wraps an API handler: CORS, the bearer token, the one JSON error renderer.
func (s *Server) api(h apiFunc) http.Handler {
	return s.cors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(tok) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keapsync"`)
			writeAPIError(w, http.StatusUnauthorized, "unauthorized",
				"Send a Supabase access token: Authorization: Bearer <token>.")
			return
		}
		claims, err := s.verify.Verify(strings.TrimSpace(tok))
		if err != nil {
			s.log.Info("api token refused", "path", r.URL.Path, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="keapsync", error="invalid_token"`)
			writeAPIError(w, http.StatusUnauthorized, "invalid_token",
				"The access token is invalid or expired. Refresh it with Supabase Auth and try again.")
			return
		}
		out, err := h(r, &user{Claims: claims, AccessToken: tok})
		if err != nil {
			s.apiFail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(out)
	}))
}

// apiFail renders a handler's error with the codes the pages use (dbError's and pageError's).
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *pageError
	if !errors.As(dbError(err), &pe) {
		pe = &pageError{Status: 500, Code: "internal", Msg: "Something went wrong on our side. Try again; if it persists, check the keapsync logs.", Err: err}
	}
	if pe.Status >= 500 {
		s.log.Error("api request failed", "path", r.URL.Path, "code", pe.Code, "err", err)
	}
	writeAPIError(w, pe.Status, pe.Code, pe.Msg)
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiError{Code: code, Message: msg})
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// cors answers browsers from the configured origins only; with none configured (the default)
// it adds nothing, and browsers keep other sites' scripts out.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(s.cfg.APICORSOrigins, origin)
		if len(s.cfg.APICORSOrigins) > 0 {
			w.Header().Add("Vary", "Origin")
		}
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				writeAPIError(w, http.StatusForbidden, "cors_origin", "This origin may not call the API from a browser.")
				return
			}
			w.Header().Set("Access-Control-Allow-Methods", "GET")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type apiAccount struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

func (s *Server) apiAccounts(r *http.Request, u *user) (any, error) {
	var out struct {
		Accounts []apiAccount `json:"accounts"`
	}
	err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
		rows, _ := tx.Query(r.Context(), sqlAccounts)
		var err error
		out.Accounts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[apiAccount])
		return err
	})
	return out, err
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// sqlMyAccount is the account of the path, if RLS lets the person see it.
const sqlMyAccount = `select a.id::text from keapsync.accounts a where a.id = $1`

// forAccount runs load for the account named in the path, as the person. An account RLS hides
// is not found, exactly like one that does not exist.
func forAccount[T any](s *Server, load func(ctx context.Context, tx pgx.Tx, acct string, now time.Time) (T, error)) apiFunc {
	return func(r *http.Request, u *user) (any, error) {
		acct := r.PathValue("account")
		notFound := &pageError{Status: 404, Code: "not_found", Msg: "No such account, or you are not a member of it."}
		if !uuidRE.MatchString(acct) {
			return nil, notFound
		}
		var out any
		err := s.asUser(r.Context(), u, 8*time.Second, func(tx pgx.Tx) error {
			var id string
			if err := tx.QueryRow(r.Context(), sqlMyAccount, acct).Scan(&id); errors.Is(err, pgx.ErrNoRows) {
				return notFound
			} else if err != nil {
				return err
			}
			var err error
			out, err = load(r.Context(), tx, id, s.cfg.Now())
			return err
		})
		return out, err
	}
}

// apiConflict is an open conflict as the API shows it: the three values as JSON.
type apiConflict struct {
	ID         int64           `json:"id"`
	ObjectType string          `json:"object_type"`
	Table      string          `json:"table"`
	LocalID    int64           `json:"local_id"`
	KeapID     *int64          `json:"keap_id"`
	Field      string          `json:"field"`
	Base       json.RawMessage `json:"base_value"`
	Local      json.RawMessage `json:"local_value"`
	Keap       json.RawMessage `json:"keap_value"`
	Policy     string          `json:"policy"`
	Detected   time.Time       `json:"detected_at"`
}

type apiConflicts struct {
	Conflicts []apiConflict `json:"conflicts"`
}

func loadConflicts(ctx context.Context, tx pgx.Tx, acct string, _ time.Time) (*apiConflicts, error) {
	rows, _ := tx.Query(ctx, sqlConflictsOpen, acct)
	open, err := pgx.CollectRows(rows, pgx.RowToStructByPos[conflictRow])
	if err != nil {
		return nil, err
	}
	out := &apiConflicts{Conflicts: []apiConflict{}}
	for _, c := range open {
		out.Conflicts = append(out.Conflicts, apiConflict{ID: c.ID, ObjectType: c.ObjectType, Table: c.TableName,
			LocalID: c.LocalID, KeapID: c.KeapID, Field: c.Field, Base: jsonOrNull(c.Base), Local: jsonOrNull(c.Local),
			Keap: jsonOrNull(c.Keap), Policy: c.Policy, Detected: c.Detected})
	}
	return out, nil
}

// jsonOrNull keeps a SQL null value a JSON null.
func jsonOrNull(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
