package keapspec

import (
	"regexp"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// correct repairs the defects of Keap's documents listed in FACTS.md §8. Every change here
// makes the document accept traffic real Keap produces; none makes it looser than that.
func correct(doc *openapi3.T) {
	mergeDuplicatePaths(doc)
	// Apply-tag responses first: the generic schema pass below must see the replacement.
	fixApplyTagResponses(doc)
	fixArrayParamEnums(doc)
	walkSchemas(doc, func(s *openapi3.Schema) {
		anyForBareObject(s)
		// Nothing in the v1 document is nullable, yet Keap sends null for absent values
		// (FACTS.md §8). A null member is treated like an absent one.
		s.Nullable = true
	})
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// mergeDuplicatePaths joins path items that differ only in parameter names, e.g.
// /v1/contacts/{id} (GET) and /v1/contacts/{contactId} (PATCH, DELETE). Routers match the first
// template and then answer "method not allowed" for the other's methods. The template with most
// operations wins; the others' operations move into it with their path parameters renamed.
func mergeDuplicatePaths(doc *openapi3.T) {
	groups := map[string][]string{}
	for p := range doc.Paths.Map() {
		shape := pathParam.ReplaceAllString(p, "{}")
		groups[shape] = append(groups[shape], p)
	}
	for _, paths := range groups {
		if len(paths) < 2 {
			continue
		}
		sort.Slice(paths, func(i, j int) bool {
			ni, nj := len(doc.Paths.Value(paths[i]).Operations()), len(doc.Paths.Value(paths[j]).Operations())
			if ni != nj {
				return ni > nj
			}
			return paths[i] < paths[j]
		})
		target := doc.Paths.Value(paths[0])
		targetNames := pathParam.FindAllString(paths[0], -1)
		for _, p := range paths[1:] {
			names := pathParam.FindAllString(p, -1)
			rename := map[string]string{}
			for i, n := range names {
				rename[strings.Trim(n, "{}")] = strings.Trim(targetNames[i], "{}")
			}
			item := doc.Paths.Value(p)
			for method, op := range item.Operations() {
				if target.GetOperation(method) != nil {
					continue // the winner already defines it; keep the winner's
				}
				op.Parameters = renameParams(op.Parameters, rename)
				target.SetOperation(method, op)
			}
			doc.Paths.Delete(p)
		}
	}
}

func renameParams(params openapi3.Parameters, rename map[string]string) openapi3.Parameters {
	out := make(openapi3.Parameters, 0, len(params))
	for _, ref := range params {
		if ref == nil || ref.Value == nil || ref.Value.In != openapi3.ParameterInPath {
			out = append(out, ref)
			continue
		}
		p := *ref.Value // copy: a shared component parameter must not change elsewhere
		if to, ok := rename[p.Name]; ok {
			p.Name = to
		}
		out = append(out, &openapi3.ParameterRef{Value: &p})
	}
	return out
}

// fixApplyTagResponses: springfox rendered Map<Long,String> as an array of Entry objects; on the
// wire Keap answers an object keyed by id, e.g. {"12":"SUCCESS"} (FACTS.md §4, §8).
func fixApplyTagResponses(doc *openapi3.T) {
	for _, p := range []string{"/v1/contacts/{contactId}/tags", "/v1/tags/{tagId}/contacts"} {
		item := doc.Paths.Value(p)
		if item == nil || item.Post == nil {
			continue
		}
		resp := item.Post.Responses.Status(200)
		if resp == nil || resp.Value == nil {
			continue
		}
		for _, mt := range resp.Value.Content {
			var enum []any
			if s := mt.Schema; s != nil && s.Value != nil && s.Value.Items != nil && s.Value.Items.Value != nil {
				if key := s.Value.Items.Value.Properties["key"]; key != nil && key.Value != nil {
					enum = key.Value.Enum
				}
			}
			values := &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeString}, Enum: enum}
			mt.Schema = &openapi3.SchemaRef{Value: &openapi3.Schema{
				Type:                 &openapi3.Types{openapi3.TypeObject},
				AdditionalProperties: openapi3.AdditionalProperties{Schema: &openapi3.SchemaRef{Value: values}},
			}}
		}
	}
}

// fixArrayParamEnums: the update_mask parameter carries its enum on the array instead of on the
// items, so every real value (an array) fails the enum check. Move the enum to the items.
func fixArrayParamEnums(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, ref := range op.Parameters {
				if ref == nil || ref.Value == nil || ref.Value.Schema == nil || ref.Value.Schema.Value == nil {
					continue
				}
				s := ref.Value.Schema.Value
				if s.Type == nil || !s.Type.Is(openapi3.TypeArray) || len(s.Enum) == 0 || s.Items == nil || s.Items.Value == nil {
					continue
				}
				items := *s.Items.Value
				items.Enum = s.Enum
				s.Items = &openapi3.SchemaRef{Value: &items}
				s.Enum = nil
			}
		}
	}
}

// anyForBareObject: Java's Object was rendered as `type: object` with no properties (e.g. a
// custom field's content, which is a string or number on the wire). Such a schema means any value.
func anyForBareObject(s *openapi3.Schema) {
	if s.Type == nil || !s.Type.Is(openapi3.TypeObject) || len(s.Properties) > 0 {
		return
	}
	if s.AdditionalProperties.Schema != nil || s.AdditionalProperties.Has != nil {
		return // a real map
	}
	if len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.Discriminator != nil {
		return
	}
	s.Type = nil
}

// walkSchemas calls fn once for every schema reachable from the document.
func walkSchemas(doc *openapi3.T, fn func(*openapi3.Schema)) {
	seen := map[*openapi3.Schema]bool{}
	var visit func(ref *openapi3.SchemaRef)
	visit = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		for _, p := range s.Properties {
			visit(p)
		}
		visit(s.Items)
		visit(s.AdditionalProperties.Schema)
		visit(s.Not)
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range list {
				visit(sub)
			}
		}
		fn(s)
	}
	visitContent := func(c openapi3.Content) {
		for _, mt := range c {
			if mt != nil {
				visit(mt.Schema)
			}
		}
	}
	if doc.Components != nil {
		for _, s := range doc.Components.Schemas {
			visit(s)
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range append(op.Parameters, item.Parameters...) {
				if p != nil && p.Value != nil {
					visit(p.Value.Schema)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				visitContent(op.RequestBody.Value.Content)
			}
			for _, r := range op.Responses.Map() {
				if r != nil && r.Value != nil {
					visitContent(r.Value.Content)
				}
			}
		}
	}
}
