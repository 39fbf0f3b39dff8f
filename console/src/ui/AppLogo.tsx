/**
 * A third-party app's logo, or its initial in a square when the logo may not be loaded. The
 * console loads a logo only from an origin the deployment allowed (`config.logoOrigins`, which
 * the Content-Security-Policy's img-src lists too): an app's developer chooses the URL, and an
 * image fetched from anywhere would tell that server who opens the consent page and when.
 * Checked here, so a logo elsewhere is never requested (and never a CSP violation).
 */
import type { ComponentChildren } from "preact";
import { config } from "../config.ts";

/** Whether the logo at `uri` may be loaded: https, from an allowed origin. */
export function logoAllowed(uri: string | null | undefined): uri is string {
  if (!uri) return false;
  try {
    const url = new URL(uri);
    return url.protocol === "https:" && config.logoOrigins.includes(url.origin);
  } catch {
    return false;
  }
}

/** The app's logo, or its initial; decorative (the app's name is always written beside it). */
export function AppLogo(
  { name, logo, small = false }: { name: string; logo: string | null | undefined; small?: boolean },
) {
  const size = small ? 32 : 48;
  const classes = small ? "app-logo small" : "app-logo";
  if (logoAllowed(logo)) {
    return (
      <img
        class={classes}
        src={logo}
        alt=""
        width={size}
        height={size}
        referrerpolicy="no-referrer"
        crossorigin="anonymous"
      />
    );
  }
  return (
    <span class={`${classes} monogram`} aria-hidden="true">
      {[...name.trim()][0]?.toUpperCase() ?? "?"}
    </span>
  );
}

/**
 * An app as the console names it: its logo, its name and its website's host (a link), then
 * `children` (the consent screen adds the developer); in a card on the consent screen.
 */
export function AppIdentity(
  { name, logo, website, small = false, card = false, children }: {
    name: string;
    logo: string | null | undefined;
    website: string | null | undefined;
    small?: boolean;
    card?: boolean;
    children?: ComponentChildren;
  },
) {
  return (
    <div class={card ? "card app-head" : "app-head"}>
      <AppLogo name={name} logo={logo} small={small} />
      <div>
        <strong>{name}</strong>
        {website && (
          <div>
            <a href={website} target="_blank" rel="noopener noreferrer">
              {new URL(website).host}
            </a>
          </div>
        )}
        {children}
      </div>
    </div>
  );
}
