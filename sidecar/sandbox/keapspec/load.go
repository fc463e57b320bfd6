package keapspec

import (
	_ "embed"
	"fmt"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

//go:embed 2025-11-05-v1.json
var v1JSON []byte

//go:embed swagger.yml
var v2YAML []byte

// Base paths of the two APIs on the wire. The documents' servers are rewritten to these so
// the router matches requests sent to any host (production, sandbox, a test server).
const (
	V1Base = "/crm/rest" // v1 document paths start with /v1/
	V2Base = "/crm"      // v2 document paths start with /rest/v2/
)

// Spec is one loaded, corrected document and its router.
type Spec struct {
	Doc    *openapi3.T
	Base   string
	router routers.Router
}

var (
	v1Once, v2Once sync.Once
	v1Spec, v2Spec *Spec
	v1Err, v2Err   error
)

// V1 returns the corrected REST v1 document. It is parsed once per process (about a second).
func V1() (*Spec, error) {
	v1Once.Do(func() { v1Spec, v1Err = load(v1JSON, V1Base, "v1", true) })
	return v1Spec, v1Err
}

// V2 returns the corrected REST v2 document.
func V2() (*Spec, error) {
	v2Once.Do(func() { v2Spec, v2Err = load(v2YAML, V2Base, "v2", true) })
	return v2Spec, v2Err
}

// load parses a document; fix=false keeps Keap's defects, for tests that prove each
// correction is needed.
func load(data []byte, base, name string, fix bool) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load %s spec: %w", name, err)
	}
	if fix {
		correct(doc)
	}
	// Servers name production hosts; only the base path matters for matching.
	doc.Servers = openapi3.Servers{{URL: base}}
	// doc.Validate is not run: springfox names like "Entry«long,string»" fail its identifier
	// charset check although they are harmless for request and response validation.
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s spec: %w", name, err)
	}
	return &Spec{Doc: doc, Base: base, router: router}, nil
}
