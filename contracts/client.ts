// A TypeScript client's view of the gateway, from the types openapi-typescript
// generates from /api/v1/openapi.json (build/openapi.d.ts, made by
// scripts/check-contracts.sh). It is compiled, never run: it fails to compile
// when a path, a schema or a field a client relies on is gone or loses its type.
import type { components, paths } from "./build/openapi";

type Upload = paths["/api/v1/sync/insight"]["post"];
type InsightUpload = Upload["requestBody"]["content"]["application/json"];
type Receipt = Upload["responses"][202]["content"]["application/json"];
type TenantHeaders = Upload["parameters"]["header"];
type UploadURLRequest = NonNullable<paths["/api/v1/storage/upload-url"]["post"]["requestBody"]>["content"]["application/json"];
type UploadURL = paths["/api/v1/storage/upload-url"]["post"]["responses"][201]["content"]["application/json"];
type Problem = components["schemas"]["Problem"];

const headers: TenantHeaders = { "X-Organization-Id": "acme", "X-Project-Id": "web", "Idempotency-Key": "ci-build-4711" };

const insight: InsightUpload = {
  projectId: "web",
  organizationId: "acme",
  timestamp: "2026-12-01T10:00:00Z",
  detectors: ["eslint"],
  totalIssues: 1,
  issuesBySeverity: { critical: 0, high: 1, medium: 0, low: 0 },
  issues: [{ detector: "eslint", severity: "high", message: "no-unused-vars", file: "src/a.ts", line: 3 }],
};

const wrongSeverity: InsightUpload = {
  ...insight,
  // @ts-expect-error the severities are an enum, so the hoisted schemas resolve to real types
  issues: [{ detector: "eslint", severity: "urgent", message: "x" }],
};

const file: UploadURLRequest = { filename: "home.png", contentType: "image/png", size: 1024, accessLevel: "PROJECT" };

export async function uploadInsight(base: string, key: string): Promise<Receipt | Problem> {
  const res = await fetch(base + "/api/v1/sync/insight", {
    method: "POST",
    headers: { ...headers, Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: JSON.stringify(insight),
  });
  return (await res.json()) as Receipt | Problem;
}

export async function uploadFile(base: string, key: string, bytes: Blob): Promise<string> {
  const res = await fetch(base + "/api/v1/storage/upload-url", {
    method: "POST",
    headers: { ...headers, Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: JSON.stringify(file),
  });
  const u = (await res.json()) as UploadURL;
  await fetch(u.uploadUrl, { method: u.instructions.method, headers: u.instructions.headers, body: bytes });
  return u.fileUrl;
}

export const examples = [wrongSeverity];
