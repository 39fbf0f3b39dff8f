/**
 * Vaults: what clients send (list query, create and update bodies) and what they get back (one
 * vault, a page of them).
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import { listQuery, ModeSchema, pageOf, Timestamp, updateBody, Uuid } from "./common.ts";

/** Longest vault name: ciphertext of the client's encryption, so room for a long name. */
export const MAX_VAULT_NAME = 10_000;
/** Longest vault description (ciphertext too). */
export const MAX_VAULT_DESCRIPTION = 100_000;
/** Most tags of a vault (the database's check too). */
export const MAX_VAULT_TAGS = 50;
/** Longest tag of a vault. */
export const MAX_TAG_LENGTH = 64;

const Tag = z.string().min(1).max(MAX_TAG_LENGTH);
const Name = z.string().min(1).max(MAX_VAULT_NAME);
const Description = z.string().max(MAX_VAULT_DESCRIPTION).nullable();
const Tags = z.array(Tag).max(MAX_VAULT_TAGS);

/** Query of the list operation. */
export const ListVaultsQuery = listQuery({ status: z.enum(["active", "inactive"]).optional() });

/** Body of the create operation. Names arrive encrypted by the client; stored as given. */
export const CreateVault = z.strictObject({
  name: Name,
  description: Description.optional(),
  tags: Tags.default([]),
}).register(components, { id: "CreateVaultRequest" });

/** Body of the update operation: at least one field. */
export const UpdateVault = updateBody({
  name: Name.optional(),
  description: Description.optional(),
  tags: Tags.optional(),
  status: z.enum(["active", "inactive"]).optional(),
}, "UpdateVaultRequest");

/** A vault. Name and description are stored as the client sent them (encrypted client-side). */
export const VaultSchema = z.object({
  id: Uuid,
  name: Name,
  description: Description,
  tags: Tags,
  status: z.enum(["active", "inactive"]).meta({
    description: "`inactive` once deleted (deletion is soft)",
  }),
  mode: ModeSchema.meta({ description: "Vaults made with a test key are test data" }),
  created_at: Timestamp,
  updated_at: Timestamp,
}).meta({ description: "An estate-planning vault" }).register(components, { id: "Vault" });

/** A page of vaults, newest first. */
export const VaultListSchema = pageOf(VaultSchema, "A page of the caller's vaults, newest first")
  .register(components, { id: "VaultList" });
