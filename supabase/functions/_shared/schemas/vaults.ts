/**
 * Vault bodies: one vault, and a page of them.
 *
 * @module
 */
import { z } from "zod";
import { ModeSchema, PaginationSchema, Timestamp, Uuid } from "./common.ts";

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
export const VaultListSchema = z.object({
  data: z.array(VaultSchema),
  pagination: PaginationSchema,
}).meta({ description: "A page of the caller's vaults, newest first" });
