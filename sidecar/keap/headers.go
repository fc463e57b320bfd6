package keap

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Keap's throttle and quota headers (FACTS.md §2), lower-case as sent. The product headers
// describe the credential's budget (OAuth client id or key); the tenant headers the app
// instance's, whose values may carry several windows pipe-delimited ("minute|day").
const (
	hdrPrefixProduct = "x-keap-product-"
	hdrPrefixTenant  = "x-keap-tenant-"
)

// productWindows reads the product throttle (per minute) and quota (per day) windows.
func productWindows(h http.Header) []window {
	var out []window
	for _, kind := range []string{"throttle", "quota"} {
		p := hdrPrefixProduct + kind + "-"
		ws := parseWindows(h, p)
		if kind == "quota" {
			if ms, err := strconv.ParseInt(header(h, p+"expiry-time"), 10, 64); err == nil && ms > 0 {
				for i := range ws {
					ws[i].expiry = time.UnixMilli(ms).UTC()
				}
			}
		}
		out = append(out, ws...)
	}
	return out
}

// tenantWindows reads the tenant throttle windows.
func tenantWindows(h http.Header) []window {
	return parseWindows(h, hdrPrefixTenant+"throttle-")
}

// parseWindows pairs the pipe-delimited limit, available and time-unit values of one header
// family. A window whose numbers do not parse is skipped: a missing header must never stop
// calls, only leave the published limits in charge.
func parseWindows(h http.Header, prefix string) []window {
	limits := split(header(h, prefix+"limit"))
	avail := split(header(h, prefix+"available"))
	units := split(header(h, prefix+"time-unit"))
	var out []window
	for i := range avail {
		a, err := strconv.Atoi(avail[i])
		if err != nil {
			continue
		}
		w := window{available: a, unit: "minute"}
		if i < len(units) {
			w.unit = strings.ToLower(units[i])
		}
		if i < len(limits) {
			w.limit, _ = strconv.Atoi(limits[i])
		}
		out = append(out, w)
	}
	return out
}

func split(v string) []string {
	if v == "" {
		return nil
	}
	parts := strings.Split(v, "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// header reads a header whatever its case: Keap sends lower-case names, which Go keeps as
// sent when set directly (the sandbox does) but canonicalizes when parsed from the wire.
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
