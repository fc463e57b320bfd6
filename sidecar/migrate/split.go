package migrate

import "strings"

// Split cuts a migration file into statements the way the Supabase CLI does before it records
// them in schema_migrations.statements: at every top-level semicolon, each statement trimmed of
// surrounding white space, without its semicolon, empty ones dropped. Semicolons inside quotes,
// dollar-quoted bodies and comments do not split.
func Split(sql string) []string {
	var (
		stmts []string
		start int
	)
	for i := 0; i < len(sql); {
		switch c := sql[i]; {
		case c == '\'' || c == '"':
			i = skipQuoted(sql, i, c)
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			i = skipBlockComment(sql, i)
		case c == '$':
			i = skipDollarQuoted(sql, i)
		case c == ';':
			stmts = appendStmt(stmts, sql[start:i])
			i++
			start = i
		default:
			i++
		}
	}
	return appendStmt(stmts, sql[start:])
}

func appendStmt(stmts []string, s string) []string {
	if s = strings.TrimSpace(s); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// skipQuoted returns the index after the string or identifier opened at i; a doubled quote
// character escapes itself.
// E'...' strings also honour backslash escapes.
func skipQuoted(sql string, i int, q byte) int {
	backslash := q == '\'' && i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e')
	for j := i + 1; j < len(sql); j++ {
		switch {
		case backslash && sql[j] == '\\':
			j++
		case sql[j] == q && j+1 < len(sql) && sql[j+1] == q:
			j++
		case sql[j] == q:
			return j + 1
		}
	}
	return len(sql)
}

// skipBlockComment returns the index after the (possibly nested) comment opened at i.
func skipBlockComment(sql string, i int) int {
	depth := 0
	for j := i; j < len(sql)-1; j++ {
		switch sql[j : j+2] {
		case "/*":
			depth++
			j++
		case "*/":
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(sql)
}

// skipDollarQuoted returns the index after a $tag$...$tag$ body opened at i, or i+1 when the
// dollar sign does not open one (a positional parameter such as $1).
func skipDollarQuoted(sql string, i int) int {
	j := i + 1
	for j < len(sql) && (isIdent(sql[j]) && !(j == i+1 && sql[j] >= '0' && sql[j] <= '9')) {
		j++
	}
	if j >= len(sql) || sql[j] != '$' {
		return i + 1
	}
	tag := sql[i : j+1]
	if end := strings.Index(sql[j+1:], tag); end >= 0 {
		return j + 1 + end + len(tag)
	}
	return len(sql)
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
