package sandbox

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkListContactsPage1000 reports how many 1000-contact pages per second the sandbox
// serves over real HTTP (default properties, id order, personal key), so it is never the
// bottleneck of keapsync's own benchmarks.
func BenchmarkListContactsPage1000(b *testing.B) {
	srv, err := New(Options{Contacts: 20000, Seed: 1, Unthrottled: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	key := srv.Credentials().PersonalKey
	client := &http.Client{}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/crm/rest/v1/contacts?limit=1000&offset=%d", srv.URL(), (i%20)*1000), nil)
		req.Header.Set("X-Keap-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		b.SetBytes(n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}
