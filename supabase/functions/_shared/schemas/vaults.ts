/**
 * Vaults: what clients send (list query, create and update bodies) and what they get back (one
 * vault, a page of them).
 *
 * @module
 */
import { z } from "zod";
import { listQuery, ModeSchema, pageOf, Timestamp, Uuid } from "./common.ts";

const Tag = z.string().min(1).max(64);

/** Query of the list operation. */
export const ListVaultsQuery = listQuery({ status: z.enum(["active", "inactive"]).optional() });

/** Body of the create operation. Names arrive encrypted by the client; stored as given. */
export const CreateVault = z.strictObject({
  name: z.string().min(1).max(10_000),
  description: z.string().max(100_000).nullable().optional(),
  tags: z.array(Tag).max(50).default([]),
});

/** Body of the update operation: at least one field. */
export const UpdateVault = z.strictObject({
  name: z.string().min(1).max(10_000).optional(),
  description: z.string().max(100_000).nullable().optional(),
  tags: z.array(Tag).max(50).optional(),
  status: z.enum(["active", "inactive"]).optional(),
}).refine((v) => Object.keys(v).length > 0, { message: "at least one field is required" });

/** A vault. Name and description are stored as the client sent them (encrypted client-side). */
export const VaultSchema = z.object({
  id: Uuid,
  name: z.string(),
  description: z.string().nullable(),
  tags: z.array(z.string()),
  status: z.enum(["active", "inactive"]).meta({
    description: "`inactive` once deleted (deletion is soft)",
  }),
  mode: ModeSchema.meta({ description: "Vaults made with a test key are test data" }),
  created_at: Timestamp,
  updated_at: Timestamp,
}).meta({ description: "An estate-planning vault" });

/** A page of vaults, newest first. */
export const VaultListSchema = pageOf(VaultSchema, "A page of the caller's vaults, newest first");
