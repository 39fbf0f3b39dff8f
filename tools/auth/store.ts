/**
 * What the local Auth stand-in keeps, in the local database's `auth` schema (tables of
 * `supabase/local/bootstrap.sql`, named as hosted Supabase names them): users with bcrypt
 * password hashes (pgcrypto's `crypt`, as Supabase Auth hashes), sessions, refresh tokens that
 * rotate, hashed one-time tokens and PKCE flow states.
 *
 * @module
 */
import type postgres from "postgres";
import { base64url } from "jose";

/** A user as Supabase Auth returns it (`GET /auth/v1/user`, and in every session). */
export interface AuthUser {
  id: string;
  aud: string;
  role: string;
  email: string;
  email_confirmed_at: string | null;
  phone: string;
  confirmed_at: string | null;
  last_sign_in_at: string | null;
  app_metadata: Record<string, unknown>;
  user_metadata: Record<string, unknown>;
  identities: unknown[];
  created_at: string;
  updated_at: string;
  is_anonymous: boolean;
}

interface UserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string;
  email_confirmed_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
  banned_until: Date | null;
}

const USER_COLUMNS = `id, aud, role, email, email_confirmed_at, last_sign_in_at, raw_app_meta_data,
  raw_user_meta_data, created_at, updated_at, banned_until`;

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** The user's JSON, as Supabase Auth serializes it. */
export function userJson(row: UserRow): AuthUser {
  return {
    id: row.id,
    aud: row.aud ?? "authenticated",
    role: row.role ?? "authenticated",
    email: row.email,
    email_confirmed_at: iso(row.email_confirmed_at),
    phone: "",
    confirmed_at: iso(row.email_confirmed_at),
    last_sign_in_at: iso(row.last_sign_in_at),
    app_metadata: row.raw_app_meta_data ?? {},
    user_metadata: row.raw_user_meta_data ?? {},
    identities: [],
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    is_anonymous: false,
  };
}

/** A stored user with the fields the handlers decide on. */
export interface StoredUser {
  json: AuthUser;
  banned: boolean;
}

function stored(row: UserRow): StoredUser {
  return {
    json: userJson(row),
    banned: row.banned_until !== null && row.banned_until > new Date(),
  };
}

/** A random string of `bytes` bytes, base64url: refresh tokens, auth codes. */
export function randomToken(bytes = 24): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** The user of an email (already normalized), or undefined. */
export function findUserByEmail(sql: postgres.Sql, email: string): Promise<StoredUser | undefined> {
  return findUser(sql, "email", email);
}

/** The user of an id, or undefined. */
export function findUserById(sql: postgres.Sql, id: string): Promise<StoredUser | undefined> {
  return findUser(sql, "id", id);
}

async function findUser(
  sql: postgres.Sql,
  column: "id" | "email",
  value: string,
): Promise<StoredUser | undefined> {
  const [row] = await sql.unsafe<UserRow[]>(
    `select ${USER_COLUMNS} from auth.users where ${column} = $1 and deleted_at is null`,
    [value],
  );
  return row === undefined ? undefined : stored(row);
}

/**
 * Creates a user (the project's `on_auth_user_created` trigger gives it an account). With a
 * password it is stored bcrypt-hashed; `confirmed` marks the email confirmed (auto-confirm, as
 * the local Supabase stack has it by default). Undefined if the email is taken.
 */
export async function insertUser(
  sql: postgres.Sql,
  email: string,
  password: string | null,
  metadata: Record<string, unknown>,
  confirmed: boolean,
): Promise<StoredUser | undefined> {
  const [row] = await sql.unsafe<UserRow[]>(
    `insert into auth.users (email, encrypted_password, raw_app_meta_data, raw_user_meta_data,
       email_confirmed_at)
     values ($1, case when $2::text is null then null
                 else extensions.crypt($2::text, extensions.gen_salt('bf', 10)) end,
             $3::jsonb, $4::jsonb, case when $5::boolean then now() end)
     on conflict (email) do nothing
     returning ${USER_COLUMNS}`,
    [
      email,
      password,
      JSON.stringify({ provider: "email", providers: ["email"] }),
      JSON.stringify(metadata),
      confirmed,
    ],
  );
  return row === undefined ? undefined : stored(row);
}

/** The user whose email and password match (bcrypt compare in the database), or undefined. */
export async function checkPassword(
  sql: postgres.Sql,
  email: string,
  password: string,
): Promise<StoredUser | undefined> {
  const [row] = await sql.unsafe<UserRow[]>(
    `select ${USER_COLUMNS} from auth.users
      where email = $1 and deleted_at is null and encrypted_password is not null
        and encrypted_password = extensions.crypt($2::text, encrypted_password)`,
    [email, password],
  );
  return row === undefined ? undefined : stored(row);
}

/** Marks the email confirmed and the sign-in time; returns the user as it is now. */
export async function recordSignIn(sql: postgres.Sql, userId: string): Promise<StoredUser> {
  const [row] = await sql.unsafe<UserRow[]>(
    `update auth.users set last_sign_in_at = now(), updated_at = now(),
       email_confirmed_at = coalesce(email_confirmed_at, now())
     where id = $1 returning ${USER_COLUMNS}`,
    [userId],
  );
  if (row === undefined) throw new Error("user vanished during sign-in");
  return stored(row);
}
