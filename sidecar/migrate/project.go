package migrate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ProjectMigrations is where a Supabase project keeps its migrations, under its workdir.
const ProjectMigrations = "supabase/migrations"

// Install is what Vendor did to a Supabase project folder.
type Install struct {
	Dir        string   // the project's migrations folder
	Written    []string // files written now
	Renamed    []string // keapsync's files found under their names from before the prefix
	Current    int      // keapsync files already there, unchanged
	IncludeAll bool     // the project has migrations newer than keapsync's oldest: db push needs --include-all
}

// NextCommand is the exact command that pushes the vendored migrations with the Supabase CLI.
func (in Install) NextCommand(workdir string) string {
	cmd := "supabase db push"
	if workdir != "." && workdir != "" {
		cmd += " --workdir " + workdir
	}
	if in.IncludeAll {
		cmd += " --include-all"
	}
	return cmd
}

// Vendor writes this binary's migrations, byte for byte, into the Supabase project at workdir,
// so `supabase db push` from that project and `keapsync migrate` record the same history. It is
// idempotent; it changes nothing when a keapsync file there differs from this binary's (edited,
// or written by a newer keapsync) and names the file. Upgrading is running it with a newer binary.
func (m *Migrator) Vendor(workdir string) (Install, error) {
	in := Install{Dir: filepath.Join(workdir, ProjectMigrations)}
	if _, err := os.Stat(filepath.Join(workdir, "supabase", "config.toml")); err != nil {
		return in, fmt.Errorf("%s is not a Supabase project (no supabase/config.toml): run `supabase init` there first, or pass --workdir", workdir)
	}
	files, err := projectFiles(in.Dir)
	if err != nil {
		return in, err
	}
	ours := m.versions()
	byVersion := map[string]string{}
	for _, f := range files {
		byVersion[f.version] = f.file
		if !ours[f.version] && strings.HasPrefix(f.name, Prefix) {
			return in, fmt.Errorf("%s is a keapsync migration this binary does not know: upgrade keapsync (nothing was written)",
				filepath.Join(in.Dir, f.file))
		}
	}
	var write []Migration
	var rename [][2]string
	for _, mig := range m.Migrations {
		have, ok := byVersion[mig.Version]
		if !ok {
			write = append(write, mig)
			continue
		}
		path := filepath.Join(in.Dir, have)
		b, err := os.ReadFile(path)
		if err != nil {
			return in, fmt.Errorf("read %s: %w", path, err)
		}
		switch {
		case have != mig.File && string(b) == mig.SQL:
			// Copied by hand before keapsync's files carried its prefix: the CLI compares versions
			// only, so giving it keapsync's name changes nothing it has recorded.
			rename = append(rename, [2]string{have, mig.File})
			continue
		case have != mig.File:
			return in, fmt.Errorf("%s has the version of keapsync's %s but another name and content: move it away (nothing was written)", path, mig.File)
		case string(b) != mig.SQL:
			return in, fmt.Errorf("%s differs from keapsync's copy (edited?): restore it or move it away; "+
				"change the schema in a migration of your own instead (nothing was written)", path)
		}
		in.Current++
	}
	for _, f := range files {
		if !m.Owns(f.version, f.name) && len(m.Migrations) > 0 && f.version > m.Migrations[0].Version {
			in.IncludeAll = true
		}
	}
	if err := os.MkdirAll(in.Dir, 0o755); err != nil {
		return in, fmt.Errorf("create %s: %w", in.Dir, err)
	}
	for _, r := range rename {
		if err := os.Rename(filepath.Join(in.Dir, r[0]), filepath.Join(in.Dir, r[1])); err != nil {
			return in, fmt.Errorf("rename %s: %w", r[0], err)
		}
		in.Renamed = append(in.Renamed, r[0]+" -> "+r[1])
	}
	for _, mig := range write {
		if err := os.WriteFile(filepath.Join(in.Dir, mig.File), []byte(mig.SQL), 0o644); err != nil {
			return in, fmt.Errorf("write %s: %w", mig.File, err)
		}
		in.Written = append(in.Written, mig.File)
	}
	return in, nil
}

// Unvendor removes keapsync's migration files, the ones named with its prefix, from the Supabase
// project at workdir. It returns what it removed.
func (m *Migrator) Unvendor(workdir string) ([]string, error) {
	dir := filepath.Join(workdir, ProjectMigrations)
	files, err := projectFiles(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, f := range files {
		if !strings.HasPrefix(f.name, Prefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, f.file)); err != nil {
			return removed, fmt.Errorf("remove %s: %w", f.file, err)
		}
		removed = append(removed, filepath.Join(dir, f.file))
	}
	return removed, nil
}

type projectFile struct{ file, version, name string }

// projectFiles lists the migration files of a project folder, as the Supabase CLI sees them; a
// missing folder has none (`supabase init` does not create it).
func projectFiles(dir string) ([]projectFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []projectFile
	for _, e := range entries {
		if m := fileName.FindStringSubmatch(e.Name()); m != nil && !e.IsDir() {
			out = append(out, projectFile{file: e.Name(), version: m[1], name: m[2]})
		}
	}
	slices.SortFunc(out, func(a, b projectFile) int { return strings.Compare(a.file, b.file) })
	return out, nil
}
