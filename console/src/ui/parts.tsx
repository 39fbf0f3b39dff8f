/** Small pieces every page uses: errors, secrets shown once, confirmations, dates. */
import { useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren, JSX } from "preact";
import { ApiError } from "../api/client.ts";

/** An error as the user sees it: the API's message, its code and the request id to quote. */
export function ErrorNote({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const e = error instanceof ApiError
    ? error
    : new ApiError(0, "ERROR", error instanceof Error ? error.message : String(error), null);
  return (
    <div class="error" role="alert">
      <strong>{e.message}</strong>
      <span class="muted">{` (${e.code}${e.status ? `, HTTP ${e.status}` : ""})`}</span>
      {e.requestId && (
        <div class="muted">
          Request id: <code>{e.requestId}</code>
        </div>
      )}
    </div>
  );
}

/** Runs an action, remembering whether it runs and how it failed. */
export function useAction<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
): { run: (...args: A) => Promise<void>; busy: boolean; error: unknown; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (...args: A) => {
    setBusy(true);
    setError(null);
    try {
      await action(...args);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, clear: () => setError(null) };
}

/**
 * A secret shown once (a new API key, a webhook signing secret): a warning, the value, a copy
 * button; "Done" forgets it for good.
 */
export function ShowOnce(
  { label, value, onDone }: { label: string; value: string; onDone: () => void },
) {
  const [copied, setCopied] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <div class="once" role="region" aria-label={label} tabIndex={-1} ref={ref}>
      <p class="warning">
        <strong>Copy it now: it is shown only this once.</strong>{" "}
        Store it somewhere safe; if it is lost, make a new one.
      </p>
      <label>
        {label}
        <input class="secret" readOnly value={value} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <div class="row">
        <button
          type="button"
          onClick={async () => {
            await navigator.clipboard.writeText(value);
            setCopied(true);
          }}
        >
          Copy
        </button>
        <span role="status">{copied ? "Copied to the clipboard" : ""}</span>
        <button type="button" class="secondary" onClick={onDone}>Done, I stored it</button>
      </div>
    </div>
  );
}

/** A modal confirmation (a native dialog: focus trapped, Escape cancels). */
export function Confirm(
  { title, children, confirmLabel, onConfirm, onCancel }: {
    title: string;
    children: ComponentChildren;
    confirmLabel: string;
    onConfirm: () => void;
    onCancel: () => void;
  },
) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onCancel={onCancel}>
      <h2 id="confirm-title">{title}</h2>
      {children}
      <div class="row">
        <button type="button" class="danger" onClick={onConfirm}>{confirmLabel}</button>
        <button type="button" class="secondary" onClick={onCancel}>Cancel</button>
      </div>
    </dialog>
  );
}

/** A date as the user's locale writes it, "—" for none. */
export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A labelled text input bound to a value (extra props go to the input). */
export function Field(
  { label, value, onValue, ...input }:
    & { label: string; value: string; onValue: (value: string) => void }
    & Omit<JSX.InputHTMLAttributes<HTMLInputElement>, "value" | "label">,
) {
  return (
    <label>
      {label}
      <input {...input} value={value} onInput={(e) => onValue(e.currentTarget.value)} />
    </label>
  );
}

/** A form whose submission runs `onSubmit` instead of navigating. */
export function ActionForm(
  { onSubmit, children, ...form }:
    & { onSubmit: () => void; children: ComponentChildren }
    & Omit<JSX.HTMLAttributes<HTMLFormElement>, "onSubmit">,
) {
  return (
    <form
      {...form}
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit();
      }}
    >
      {children}
    </form>
  );
}

/** A fieldset of checkboxes choosing a subset of `options`. */
export function Checkboxes<T extends string>(
  { legend, name, options, chosen, onChosen }: {
    legend: string;
    name: string;
    options: readonly T[];
    chosen: T[];
    onChosen: (chosen: T[]) => void;
  },
) {
  return (
    <fieldset>
      <legend>{legend}</legend>
      <div class="grid">
        {options.map((option) => (
          <label class="inline" key={option}>
            <input
              type="checkbox"
              name={name}
              value={option}
              checked={chosen.includes(option)}
              onChange={(e) =>
                onChosen(
                  e.currentTarget.checked
                    ? [...chosen, option]
                    : chosen.filter((c) => c !== option),
                )}
            />
            <code>{option}</code>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

/**
 * A list as a table that scrolls sideways on a narrow screen: its caption (for screen readers
 * only unless `showCaption`), its column headers, and its rows (`children`).
 */
export function Table({ caption, showCaption = false, columns, children }: {
  caption: ComponentChildren;
  showCaption?: boolean;
  columns: readonly ComponentChildren[];
  children: ComponentChildren;
}) {
  return (
    <div class="scroll">
      <table>
        <caption class={showCaption ? undefined : "sr-only"}>{caption}</caption>
        <thead>
          <tr>
            {columns.map((column, i) => <th scope="col" key={i}>{column}</th>)}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
