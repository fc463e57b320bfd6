// Package keapspec holds Keap's published OpenAPI documents and checks HTTP traffic against them,
// so the sandbox and the Keap client are both held to what Keap publishes, not to each other.
//
// The embedded files are byte-for-byte copies of Keap's published OpenAPI documents
// (docs/keap/SOURCE.md says where each comes from):
//
//   - 2025-11-05-v1.json: Keap REST v1, version 1.70.0.872719 (toddstoker/keap-sdk,
//     api-docs/2025-11-05-v1.json, a snapshot of crm.infusionsoft.com/app/v3/api-docs/V1).
//   - swagger.yml: Keap REST v2 (infusionsoft/keap-sdk, sdks/v2/swagger.yml, OpenAPI 3.1).
//
// The files are never edited. The known defects of the v1 document (FACTS.md §8) are corrected
// in code after loading, in corrections.go, each with the reason.
//
// Base paths are explicit: v1 paths are "/v1/..." under "/crm/rest", v2 paths are
// "/rest/v2/..." under "/crm"; both therefore live under "/crm/rest/v1" and "/crm/rest/v2" on the
// wire. The validator ignores scheme and host and matches the path only.
package keapspec
