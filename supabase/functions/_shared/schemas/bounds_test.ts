/**
 * Every input bound the OpenAPI document states is one zod enforces: the value at the bound
 * passes, one character or one item past it fails, naming the field.
 */
import assert from "node:assert/strict";
import type { z } from "zod";
import { MAX_INSTANT_LENGTH } from "./common.ts";
import { CreateKey, MAX_KEY_NAME } from "./keys.ts";
import { KeyUsageQuery, UsageQuery } from "./usage.ts";
import {
  CreateVault,
  MAX_TAG_LENGTH,
  MAX_VAULT_NAME,
  MAX_VAULT_TAGS,
  UpdateVault,
} from "./vaults.ts";
import { CreateWebhook, MAX_WEBHOOK_DESCRIPTION, MAX_WEBHOOK_URL } from "./webhooks.ts";

/** Asserts `schema` takes `atBound` and refuses `past` with an issue at `path`. */
function bounded(schema: z.ZodType, atBound: unknown, past: unknown, path: string): void {
  const ok = schema.safeParse(atBound);
  assert.ok(ok.success, `at the bound: ${ok.error?.message}`);
  const refused = schema.safeParse(past);
  assert.ok(!refused.success, `past the bound of ${path} accepted`);
  assert.ok(
    refused.error.issues.some((i) => i.path.join(".") === path),
    `no issue at ${path}: ${refused.error.message}`,
  );
}

const instant = (fraction: string) => `2030-01-01T00:00:00.${fraction}+00:00`;

Deno.test("instants: 35 characters pass (nanoseconds and an offset), 36 do not", () => {
  assert.equal(instant("123456789").length, MAX_INSTANT_LENGTH);
  const key = { name: "k", mode: "test" };
  bounded(
    CreateKey,
    { ...key, expires_at: instant("123456789") },
    { ...key, expires_at: instant("1234567890") },
    "expires_at",
  );
  for (const field of ["from", "to"]) {
    for (const query of [UsageQuery, KeyUsageQuery]) {
      bounded(query, { [field]: instant("123456789") }, { [field]: instant("1234567890") }, field);
    }
  }
});

Deno.test("usage key_id: a ULID in either case, 26 characters", () => {
  const id = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  bounded(UsageQuery, { key_id: id.toLowerCase() }, { key_id: `${id}0` }, "key_id");
});

Deno.test("vaults: names, tags and their number stop at their bounds", () => {
  const name = "n".repeat(MAX_VAULT_NAME);
  bounded(CreateVault, { name }, { name: `${name}n` }, "name");
  bounded(UpdateVault, { name }, { name: `${name}n` }, "name");
  const tag = "t".repeat(MAX_TAG_LENGTH);
  bounded(CreateVault, { name: "n", tags: [tag] }, { name: "n", tags: [`${tag}t`] }, "tags.0");
  const tags = Array(MAX_VAULT_TAGS).fill("t");
  bounded(UpdateVault, { tags }, { tags: [...tags, "t"] }, "tags");
});

Deno.test("keys and webhooks: names, URLs and descriptions stop at their bounds", () => {
  const name = "k".repeat(MAX_KEY_NAME);
  bounded(CreateKey, { name, mode: "test" }, { name: `${name}k`, mode: "test" }, "name");
  const events = ["vault.created"];
  const url = `https://example.com/${"u".repeat(MAX_WEBHOOK_URL - 20)}`;
  assert.equal(url.length, MAX_WEBHOOK_URL);
  bounded(CreateWebhook, { url, events }, { url: `${url}u`, events }, "url");
  const description = "d".repeat(MAX_WEBHOOK_DESCRIPTION);
  bounded(
    CreateWebhook,
    { url: "https://example.com/", events, description },
    { url: "https://example.com/", events, description: `${description}d` },
    "description",
  );
});
