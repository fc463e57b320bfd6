package keapauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Token is one Keap token pair and what we know of its lifetimes.
type Token struct {
	AccessToken   string    `json:"access_token"`
	RefreshToken  string    `json:"refresh_token"`
	TokenType     string    `json:"token_type"`
	Scope         string    `json:"scope"`
	Expiry        time.Time `json:"expiry"`         // the access token's
	RefreshExpiry time.Time `json:"refresh_expiry"` // 45 days after issue (Keap does not say)
	IssuedAt      time.Time `json:"issued_at"`
}

// String never shows a secret.
func (t Token) String() string {
	return fmt.Sprintf("Token{scope=%q expiry=%s}", t.Scope, t.Expiry.Format(time.RFC3339))
}

// LogValue keeps tokens out of slog output even when logged by mistake (slog.LogValuer).
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// db is what the keeper needs of a connection pool.
type db interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const (
	sqlLoadToken = `select key_id, ciphertext from keapsync.oauth_tokens where account_id = $1`
	sqlLockToken = sqlLoadToken + ` for update`
	sqlSaveToken = `
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext, access_expires_at, refresh_expires_at, scope,
                                   refreshed_at, last_error, updated_at)
values ($1, $2, $3, $4, $5, $6, $7, null, $7)
on conflict (account_id) do update
   set key_id = excluded.key_id, ciphertext = excluded.ciphertext,
       access_expires_at = excluded.access_expires_at, refresh_expires_at = excluded.refresh_expires_at,
       scope = excluded.scope, refreshed_at = excluded.refreshed_at, last_error = null, updated_at = excluded.updated_at`
	sqlConnectAccount = `
insert into keapsync.accounts (name, keap_tenant) values ($1, $1)
on conflict (keap_tenant) do update set needs_reauth = false, updated_at = now()
returning id`
	sqlEnsureSettings = `insert into keapsync.settings (account_id) values ($1) on conflict do nothing`
	sqlMarkReauth     = `update keapsync.accounts set needs_reauth = true, updated_at = now() where id = $1`
	sqlTokenError     = `update keapsync.oauth_tokens set last_error = $2, updated_at = now() where account_id = $1`
	sqlDueAccounts    = `
select t.account_id from keapsync.oauth_tokens t join keapsync.accounts a on a.id = t.account_id
 where not a.needs_reauth and (t.access_expires_at < $1 or t.refresh_expires_at < $2)`
	sqlNewLink    = `select keapsync.new_oauth_link($1, $2)`
	sqlStartOAuth = `select keapsync.start_oauth($1, $2, $3)`
	sqlTakeState  = `select keapsync.take_oauth_state($1)`
	sqlRevoke     = `
with gone as (delete from keapsync.oauth_tokens where account_id = $1 returning account_id)
update keapsync.accounts set needs_reauth = true, updated_at = now() where id in (select account_id from gone)`
)

// errNoToken means the account has never been connected (or was revoked).
var errNoToken = errors.New("no Keap token stored for this account (run keapsync auth login)")

// seal serialises and encrypts a token bound to its account.
func (k *Keeper) seal(account string, t Token) (string, []byte, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return "", nil, fmt.Errorf("encode token: %w", err)
	}
	keyID, sealed := k.keys.Seal(plain, []byte(account))
	return keyID, sealed, nil
}

// load reads and opens an account's token, with the row lock when tx is a locking read.
func (k *Keeper) load(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql, account string) (Token, string, error) {
	var keyID string
	var sealed []byte
	if err := q.QueryRow(ctx, sql, account).Scan(&keyID, &sealed); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Token{}, "", errNoToken
		}
		return Token{}, "", fmt.Errorf("read token: %w", err)
	}
	plain, err := k.keys.Open(keyID, sealed, []byte(account))
	if err != nil {
		return Token{}, "", fmt.Errorf("open token of account %s: %w", account, err)
	}
	var t Token
	if err := json.Unmarshal(plain, &t); err != nil {
		return Token{}, "", fmt.Errorf("decode token of account %s: %w", account, err)
	}
	return t, keyID, nil
}

// save seals and writes a token within tx.
func (k *Keeper) save(ctx context.Context, tx pgx.Tx, account string, t Token) error {
	keyID, sealed, err := k.seal(account, t)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, sqlSaveToken, account, keyID, sealed, t.Expiry, t.RefreshExpiry, t.Scope, k.cfg.Clock.Now())
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}
