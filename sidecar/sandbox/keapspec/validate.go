package keapspec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// ErrNotKeapAPI reports a path outside /crm/rest/v1 and /crm/rest/v2 (e.g. /token), which no
// OpenAPI document covers.
var ErrNotKeapAPI = errors.New("not a Keap REST API path")

// ErrUndocumented reports an operation the document does not declare.
var ErrUndocumented = errors.New("operation not in the spec")

// Validator checks requests and responses against the corrected Keap documents. It is safe for
// concurrent use.
type Validator struct {
	v1, v2 func() (*Spec, error)
}

// NewValidator loads the v1 document now (the v2 one on first use) so a broken embed fails early.
func NewValidator() (*Validator, error) {
	if _, err := V1(); err != nil {
		return nil, err
	}
	return &Validator{v1: V1, v2: V2}, nil
}

// specFor picks the document for a request path by its base path.
func (v *Validator) specFor(path string) (*Spec, error) {
	switch {
	case strings.HasPrefix(path, V1Base+"/v1/"):
		return v.v1()
	case strings.HasPrefix(path, V2Base+"/rest/v2/"):
		return v.v2()
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNotKeapAPI)
}

// Exchange is one request and its response, with the bodies already read.
type Exchange struct {
	Request     *http.Request
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

func (v *Validator) route(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	spec, err := v.specFor(req.URL.Path)
	if err != nil {
		return nil, err
	}
	// The router matches path and method only; give it a copy with the body rewound.
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := spec.router.FindRoute(r)
	if err != nil {
		if errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
			return nil, fmt.Errorf("%s %s: %w (%v)", req.Method, req.URL.Path, ErrUndocumented, err)
		}
		return nil, fmt.Errorf("route %s %s: %w", req.Method, req.URL.Path, err)
	}
	return &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}, nil
}

// ValidateRequest checks method, path, parameters and body of a request.
func (v *Validator) ValidateRequest(ctx context.Context, req *http.Request, body []byte) error {
	in, err := v.route(req, body)
	if err != nil {
		return err
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return fmt.Errorf("request %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// ValidateExchange checks the request and then the response. A 2xx status the operation does
// not declare is an error; other undeclared statuses (400, 429, gateway 401s) are allowed,
// because Keap's documents declare none of them (FACTS.md §2, §3).
func (v *Validator) ValidateExchange(ctx context.Context, x Exchange) error {
	in, err := v.route(x.Request, x.RequestBody)
	if err != nil {
		return err
	}
	var errs []error
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		errs = append(errs, fmt.Errorf("request: %w", err))
	}
	op := in.Route.Operation
	if x.Status >= 200 && x.Status < 300 && op.Responses.Status(x.Status) == nil && op.Responses.Default() == nil {
		errs = append(errs, fmt.Errorf("response: status %d not declared (declared: %s)", x.Status, declared(in)))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 x.Status,
		Header:                 x.Header,
		Options:                &openapi3filter.Options{MultiError: true},
	}
	out.SetBodyBytes(x.Body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response %d: %w", x.Status, err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %w", x.Request.Method, x.Request.URL.Path, errors.Join(errs...))
	}
	return nil
}

func declared(in *openapi3filter.RequestValidationInput) string {
	var codes []string
	for code := range in.Route.Operation.Responses.Map() {
		if _, err := strconv.Atoi(code); err == nil {
			codes = append(codes, code)
		}
	}
	return strings.Join(codes, ",")
}

// ValidateBody checks only the request body (and that the operation exists). The sandbox uses it
// to reject what Keap's deserializer would reject, while parsing query strings itself with
// Keap's leniency (comma lists where the document declares exploded arrays).
func (v *Validator) ValidateBody(ctx context.Context, req *http.Request, body []byte) error {
	in, err := v.route(req, body)
	if err != nil {
		return err
	}
	rb := in.Route.Operation.RequestBody
	if rb == nil || rb.Value == nil {
		return nil
	}
	if err := openapi3filter.ValidateRequestBody(ctx, in, rb.Value); err != nil {
		return fmt.Errorf("request body %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}
