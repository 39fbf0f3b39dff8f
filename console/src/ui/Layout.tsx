/** The frame of every page: navigation, the live/test switch, sign-out. */
import type { ComponentChildren } from "preact";
import { session, signOut } from "../auth.ts";
import { mode, navigate, route, type RoutePath, ROUTES } from "./state.ts";

/** The live/test mode switch (a checkbox with the switch role: Space toggles it). */
export function ModeSwitch() {
  return (
    <label class="switch">
      <input
        type="checkbox"
        role="switch"
        checked={mode.value === "live"}
        onChange={(e) => (mode.value = e.currentTarget.checked ? "live" : "test")}
      />
      Live mode
    </label>
  );
}

export function Layout({ children }: { children: ComponentChildren }) {
  return (
    <>
      <a class="skip" href="#main">Skip to the content</a>
      <header>
        <span class="brand">Torvus console</span>
        <nav aria-label="Pages">
          {(Object.keys(ROUTES) as RoutePath[]).map((path) => (
            <a
              key={path}
              href={path}
              aria-current={route.value === path ? "page" : undefined}
              onClick={(e) => {
                e.preventDefault();
                navigate(path);
              }}
            >
              {ROUTES[path]}
            </a>
          ))}
        </nav>
        <ModeSwitch />
        <span class="muted">{session.value?.user.email}</span>
        <button type="button" class="secondary" onClick={() => void signOut()}>Sign out</button>
      </header>
      <main id="main" class={mode.value === "test" ? "test-mode" : ""}>
        {mode.value === "test" && <p class="banner">Test mode: test keys and test data.</p>}
        {children}
      </main>
    </>
  );
}
