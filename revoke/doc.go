// Package revoke turns anomalies into revocations at the session service,
// safely enough to run unattended (DESIGN.md §6, docs/revocation.md).
//
// The path of an anomaly:
//
//  1. Policy (policy.go) maps its detector, kind and severity to an Action:
//     revoke_family, revoke_session, revoke_user or alert_only.
//  2. Outbox (outbox.go) produces an Intent for every revoking action to the
//     `vigil.actions` topic, synchronously, before the ingest batch that
//     raised the anomaly commits its offsets. The intent id is the
//     idempotency key: a digest of the anomaly id, the scope and the subject.
//  3. Revoker (revoker.go), a consumer group on that topic, runs the
//     guardrails (guard.go: dry-run, allowlists, cool-down, blast-radius cap
//     and halt, rate limit), then sends the intent through an Adapter with
//     retries (jittered exponential backoff, Retry-After) behind a circuit
//     breaker per endpoint, until it is done, fails permanently or passes
//     its deadline. Every attempt and decision is a row of the ClickHouse
//     `actions` table (audit.go); an intent's offset is committed only once
//     its final row is durable, so a crash resends it under the same key.
//
// Adapters live in sub-packages: httpapi (vigil's own API, which the
// simulator speaks), kratos, keycloak and auth0.
package revoke
