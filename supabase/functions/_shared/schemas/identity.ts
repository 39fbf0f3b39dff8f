/**
 * Who the caller is: the body of `GET /api/v1/test` (an API key, as the v1 documentation shows
 * it) and of `GET /api/me` (a signed-in user).
 *
 * @module
 */
import { z } from "zod";
import { components } from "./component.ts";
import { Timestamp, Ulid, Uuid } from "./common.ts";
import { MAX_KEY_NAME } from "./keys.ts";

/** Longest e-mail address: Supabase Auth keeps it in `auth.users.email`, a varchar(255). */
export const MAX_EMAIL_LENGTH = 255;

/** `GET /api/v1/test` 200: the key authenticated and its limits. */
export const V1TestSchema = z.object({
  success: z.literal(true),
  message: z.string().max(200).meta({ examples: ["Authentication successful"] }),
  key_info: z.object({
    key_id: Ulid.meta({ description: "The API key's id (never the key)" }),
    key_name: z.string().max(MAX_KEY_NAME),
    user_id: Uuid.meta({ description: "The id of the user who owns the key" }),
    tier_id: Ulid.meta({ description: "The subscription tier that sets the key's limits" }),
    rate_limits: z.object({
      requests_per_day: z.int32().min(1),
      requests_per_minute: z.int32().min(1),
    }),
  }),
  timestamp: Timestamp,
}).meta({ description: "The API key is valid; what it is and what it may do" }).register(
  components,
  { id: "V1TestResult" },
);

/** `GET /api/me` 200: the signed-in user's profile. */
export const MeSchema = z.object({
  id: Uuid,
  email: z.string().max(MAX_EMAIL_LENGTH).nullable(),
  created_at: Timestamp,
}).meta({ description: "The signed-in user" }).register(components, { id: "Me" });
