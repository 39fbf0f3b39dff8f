/**
 * The admin tool's operations, for the CLI and for tests that call them in-process. Each takes
 * a postgres.js client (or transaction) connected as an operator role, validates its input with
 * zod and throws {@link AdminError} (with the CLI exit code) for bad input or unknown objects.
 *
 * @module
 */
export { AdminError, describeError, type Queryable, redact } from "./errors.ts";
export { createTier, type CreateTierOptions, findTier, listTiers, type Tier } from "./tiers.ts";
export {
  createUser,
  findUser,
  type MintedToken,
  mintTokenFor,
  setUserTier,
  type TierChange,
  tokenIssuer,
  type User,
} from "./users.ts";
export {
  createApiKey,
  type CreatedKey,
  type CreateKeyOptions,
  type KeyInfo,
  type KeyScope,
  type KeyStatus,
  listKeys,
  setKeyExpiry,
  setKeyStatus,
  setKeyTier,
} from "./keys.ts";
